"""S3 access details Beam leaves out: requester-pays buckets such as `s3://arxiv/src/`.

Beam's S3 filesystem (`pip install llama-data[aws]`, i.e. apache-beam[aws]) reads objects with
boto3 but never sends `RequestPayer=requester`, which requester-pays buckets demand (they answer
403 otherwise). `enable_requester_pays()` registers a botocore hook on every S3 client Beam
creates in this process, adding the parameter to GetObject/HeadObject/ListObjectsV2. It must run
in each worker process too, which is why the arXiv reader calls it before opening a file.

Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws,
an instance role) or Beam's `--s3_access_key_id/--s3_secret_access_key/--s3_region_name` options.
"""

from __future__ import annotations

from typing import Any

_OPS = ("GetObject", "HeadObject", "ListObjectsV2", "ListObjects")
_patched = False


def _add_payer(params: dict[str, Any], **_kwargs: Any) -> None:
    params.setdefault("RequestPayer", "requester")


def register_requester_pays(client: Any) -> None:
    """Add `RequestPayer=requester` to the reads of one boto3 S3 client."""
    for op in _OPS:
        client.meta.events.register(f"before-parameter-build.s3.{op}", _add_payer)


def enable_requester_pays() -> None:
    """Make every S3 client Beam creates from now on (in this process) pay as requester."""
    global _patched
    if _patched:
        return
    try:
        from apache_beam.io.aws.clients.s3 import boto3_client
    except ImportError as exc:  # pragma: no cover - only without the aws extra
        raise RuntimeError("s3:// needs `pip install llama-data[aws]` (apache-beam[aws])") from exc
    original = boto3_client.Client.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        register_requester_pays(self.client)

    boto3_client.Client.__init__ = init  # type: ignore[method-assign]
    _patched = True
