"""A Snowflake-protocol server for tests and benchmarks: fakesnow (over DuckDB) behind a thin
adapter so that the Node.js snowflake-sdk can read its answers.

fakesnow answers SELECTs as Arrow (queryResultFormat "arrow", rowsetBase64); the Node driver reads
only JSON rowsets. This wraps fakesnow's query-request handler and rewrites Arrow results as JSON
rowsets, every cell a string or null in Snowflake's JSON wire encoding. It also:
- adds the output-format parameters the driver reads from every query response;
- turns fakesnow's HTTP 500 (unsupported SQL) into 200 + success false, which the driver reports
  at once instead of retrying for minutes and losing the message;
- answers the driver's telemetry posts;
- serialises queries (fakesnow shares one DuckDB connection between sessions);
- splits large results into chunks the driver downloads as it reads, as Snowflake does, so the
  driver streams instead of parsing one huge response.

Usage: python snowflake-server.py PORT   (listens on 127.0.0.1; env CHUNK_ROWS, default 50000)
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import sys
import warnings

import pyarrow as pa
import pyarrow.compute as pc
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import fakesnow.server as fakesnow_server

# DuckDB warns on every SELECT that Arrow output copies the rows; it is expected here.
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")

_query_lock = asyncio.Lock()

CHUNK_ROWS = int(os.environ.get("CHUNK_ROWS", "50000"))
KEEP_RESULTS = 4  # chunks of older results are dropped; the driver may fetch a chunk twice
_chunks: dict[str, bytes] = {}
_result_ids = itertools.count()

OUTPUT_PARAMETERS = [
    {"name": "TIMEZONE", "value": "Etc/UTC"},
    {"name": "DATE_OUTPUT_FORMAT", "value": "YYYY-MM-DD"},
    {"name": "TIME_OUTPUT_FORMAT", "value": "HH24:MI:SS"},
    {"name": "TIMESTAMP_OUTPUT_FORMAT", "value": "YYYY-MM-DD HH24:MI:SS.FF3 TZHTZM"},
    {"name": "TIMESTAMP_NTZ_OUTPUT_FORMAT", "value": "YYYY-MM-DD HH24:MI:SS.FF3"},
    {"name": "BINARY_OUTPUT_FORMAT", "value": "HEX"},
]


def _seconds(total_ns: pa.Array) -> pa.Array:
    """int64 nanoseconds -> exact decimal seconds as text, e.g. "1700000000.123456789"."""
    sign = pc.if_else(pc.less(total_ns, 0), "-", "")
    magnitude = pc.abs(total_ns)
    seconds = pc.divide(magnitude, 1_000_000_000)
    fraction = pc.subtract(magnitude, pc.multiply(seconds, 1_000_000_000))
    fraction = pc.utf8_lpad(fraction.cast(pa.string()), width=9, padding="0")
    return pc.binary_join_element_wise(sign, seconds.cast(pa.string()), ".", fraction, "")


def _column_as_json(column: pa.Array, logical_type: str) -> list:
    """One column of fakesnow's Arrow (fakesnow.arrow.to_sf) -> list of str | None."""
    if logical_type == "BOOLEAN":
        text = pc.if_else(column, "1", "0")
    elif logical_type == "DATE":  # days since the epoch
        text = column.cast(pa.int32()).cast(pa.string())
    elif logical_type.startswith("TIMESTAMP"):  # struct<epoch, fraction[, timezone]>
        nanos = pc.add(
            pc.multiply(pc.struct_field(column, "epoch"), 1_000_000_000),
            pc.struct_field(column, "fraction").cast(pa.int64()),
        )
        text = _seconds(nanos)
        if logical_type == "TIMESTAMP_TZ":  # "<seconds> <tz index>", 1440 = UTC
            text = pc.binary_join_element_wise(text, pc.struct_field(column, "timezone").cast(pa.string()), " ")
        text = pc.if_else(pc.is_null(column), pa.scalar(None, pa.string()), text)
    elif logical_type == "TIME":  # int64 nanoseconds since midnight
        text = _seconds(column)
    elif logical_type == "BINARY":
        return [None if value is None else value.hex().upper() for value in column.to_pylist()]
    else:  # TEXT, FIXED, REAL, VARIANT (JSON text)
        text = column.cast(pa.string())
    return text.to_pylist()


def arrow_to_rowset(rowset_base64: str) -> list[tuple]:
    if not rowset_base64:
        return []
    table = pa.ipc.open_stream(base64.b64decode(rowset_base64)).read_all().combine_chunks()
    columns = [
        _column_as_json(
            table.column(i).chunk(0) if table.column(i).num_chunks else pa.array([], field.type),
            field.metadata[b"logicalType"].decode(),
        )
        for i, field in enumerate(table.schema)
    ]
    return list(zip(*columns))  # tuples serialise as JSON arrays, much faster than lists


async def query_request(request: Request) -> Response:
    async with _query_lock:
        response = await fakesnow_server.query_request(request)
    body = json.loads(response.body)
    data = body.get("data")
    if body.get("success") and isinstance(data, dict):
        data["parameters"] = OUTPUT_PARAMETERS
        if data.get("queryResultFormat") == "arrow":
            rowset = await asyncio.to_thread(arrow_to_rowset, data.pop("rowsetBase64", ""))
            # `returned` is the row count over all chunks: the driver's stream stops there.
            data.update(queryResultFormat="json", rowset=rowset[:CHUNK_ROWS], returned=len(rowset), total=len(rowset), version=1)
            data["chunks"] = await asyncio.to_thread(_store_chunks, rowset, f"{request.url.scheme}://{request.url.netloc}")
            body["code"] = "0"
        else:
            data.setdefault("version", 1)
            data.setdefault("chunks", [])
            data.setdefault("returned", len(data.get("rowset") or []))
    return JSONResponse(body, status_code=200 if response.status_code >= 500 else response.status_code)


def _store_chunks(rowset: list[tuple], base_url: str) -> list[dict]:
    """Rows past the first CHUNK_ROWS, as chunk descriptors pointing back at this server."""
    result = next(_result_ids)
    for path in [p for p in _chunks if int(p.split("/")[2]) <= result - KEEP_RESULTS]:
        del _chunks[path]
    chunks = []
    for number, start in enumerate(range(CHUNK_ROWS, len(rowset), CHUNK_ROWS)):
        part = rowset[start : start + CHUNK_ROWS]
        path = f"/result-chunks/{result}/{number}"
        # A chunk is its rows without the enclosing brackets; the driver adds them.
        _chunks[path] = json.dumps(part, separators=(",", ":"))[1:-1].encode()
        chunks.append({"url": base_url + path, "rowCount": len(part), "uncompressedSize": len(_chunks[path])})
    return chunks


async def chunk(request: Request) -> Response:
    content = _chunks.get(request.url.path)
    if content is None:
        return Response(status_code=404)
    return Response(content, media_type="application/octet-stream")


async def telemetry(_: Request) -> JSONResponse:
    return JSONResponse({"success": True, "data": None, "code": None, "message": None})


routes = [
    Route(route.path, query_request, methods=["POST"]) if route.path == "/queries/v1/query-request" else route
    for route in fakesnow_server.routes
]
routes.append(Route("/telemetry/send", telemetry, methods=["POST"]))
routes.append(Route("/result-chunks/{result}/{number}", chunk, methods=["GET"]))
app = Starlette(routes=routes)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
