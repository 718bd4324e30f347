"""Schemathesis hooks for scripts/api-check.sh (loaded through SCHEMATHESIS_HOOKS).

Every valid `Idempotency-Key` schemathesis generates is replaced, just before the request
is sent, by one never sent before in this run. Generated keys repeat ("0", "00"), and by
contract (SPEC §3) a repeated key answers the stored response (same body, even after the
resource it created was deleted: the stateful checks then report "created resource not
found") or 422 (another body). Both are tested in tests/api/idempotency.rs; here each
POST should be tested on its own merits. Invalid keys (negative cases) are sent as
generated, so their 400 is still checked.
"""

import itertools
import re
import uuid

import schemathesis

HEADER = "Idempotency-Key"
# The API's rule (app::idempotency::parse_key), as the OpenAPI document states it.
VALID = re.compile(
    r'^(?:"[\x20-\x7e]{1,255}"|[\x21-\x7e]|[\x21\x23-\x7e][\x20-\x7e]{0,253}[\x21-\x7e]'
    r'|[\x21-\x7e][\x20-\x7e]{0,253}[\x21\x23-\x7e])$'
)
# Unique across runs too (a key is kept 24 h), so a rerun against the same database is fine.
_RUN = uuid.uuid4().hex[:12]
_counter = itertools.count(1)


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        if name.lower() == HEADER.lower():
            value = headers[name]
            if isinstance(value, str) and VALID.match(value):
                headers[name] = f"api-check-{_RUN}-{next(_counter)}"
                # A valid key for a valid key: what the case tests (e.g. a missing
                # `Authorization`) is unchanged, so it is not revalidated (schemathesis
                # 4.32 would relabel it from the edited headers).
                sync = getattr(case, "_sync_validated_hashes", None)
                if sync is not None:
                    sync()
