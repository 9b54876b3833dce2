#!/usr/bin/env sh
# Regenerate the Pub/Sub API Python modules from src/chronoforce/schemas/pubsub/pubsub_api.proto.
# Run from anywhere: `scripts/gen_pubsub.sh` (uses .venv/bin/python unless PYTHON is set).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
OUT="$ROOT/src/chronoforce/schemas/pubsub"
cd "$OUT"
"$PYTHON" -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. pubsub_api.proto
# protoc writes a top-level import; inside our package it must be relative.
sed -i 's/^import pubsub_api_pb2 as /from . import pubsub_api_pb2 as /' pubsub_api_pb2_grpc.py
# pyproject's ruff exclude names `*_pb2*.py`, not the stub: keep `make lint` green on it.
{ echo "# ruff: noqa"; cat pubsub_api_pb2.pyi; } > pubsub_api_pb2.pyi.tmp
mv pubsub_api_pb2.pyi.tmp pubsub_api_pb2.pyi
"$PYTHON" -m ruff format --quiet pubsub_api_pb2.pyi
echo "regenerated $(ls pubsub_api_pb2*.py*)"
