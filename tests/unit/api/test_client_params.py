"""``params`` keys are checked once, the same way, before any request is made."""

from __future__ import annotations

import pytest

from bytenite_nb.api.client import Client

#: Nothing listens here: a request would fail with a connection error, not a ValueError.
UNREACHABLE = "http://127.0.0.1:9"


@pytest.mark.parametrize("call", ["submit", "set_params"])
def test_unknown_params_keys_are_refused_before_any_request(call: str) -> None:
    client = Client(api_key="unused-key-0123456789", base_url=UNREACHABLE, max_retries=0)
    params = {"case": "upper"}  # an app parameter at the top level: a common slip
    with pytest.raises(ValueError) as err:
        if call == "submit":
            client.submit("hello-world-template", source="bypass", params=params)
        else:
            client.set_params("job-1", params)
    assert str(err.value) == (
        "params take the keys app, partitioner and assembler; got ['case'] "
        "(put app parameters under 'app')"
    )
