"""chronoforce's HTTP entry point: the FastAPI app (`app.create_app`) and its routers."""
