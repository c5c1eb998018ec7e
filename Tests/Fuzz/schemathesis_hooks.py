"""Schemathesis hooks for WebAPIFuzzTests (loaded through SCHEMATHESIS_HOOKS).

PUT /v1/members/{id} stores a member only when the body's id is the path's,
a rule OpenAPI cannot state: without this, nearly every generated member
is refused with 422 and the fuzzer never reaches the upsert and the reads
of the members it made. Only positive cases are changed, so an invalid body
stays invalid.
"""

import schemathesis


@schemathesis.hook
def map_case(context, case):
    if case.method.upper() == "PUT" and case.meta is not None and not case.meta.generation.mode.is_negative:
        member = (case.path_parameters or {}).get("id")
        if isinstance(case.body, dict) and isinstance(member, int) and not isinstance(member, bool):
            case.body["id"] = member
    return case
