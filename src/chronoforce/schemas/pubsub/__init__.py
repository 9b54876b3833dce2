"""Salesforce Pub/Sub API contract: our `pubsub_api.proto` and the modules generated from it.

Shared by the sandbox's gRPC server and chronoforce's subscriber; it must never hold logic.
Regenerate with `scripts/gen_pubsub.sh`; never edit the `*_pb2*` files by hand.
"""
