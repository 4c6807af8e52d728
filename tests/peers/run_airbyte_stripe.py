"""airbyte-source-stripe's own launcher pointed at billhub's Stripe emulator. Run by the peer
venv's python (the source and airbyte-cdk), never imported by billhub's tests.

The emulator's address comes in ``BILLHUB_STRIPE_EMULATOR`` (loopback). The source is Airbyte's
declarative manifest (``source_stripe/manifest.yaml``) whose requester names its base URL,
``url_base: https://api.stripe.com/v1``, with no setting for it; this launcher loads that very
manifest and changes that one value to the emulator's ``/v1``. Every stream, request, header
(``Stripe-Version: 2022-11-15``, ``Stripe-Account``), paginator and error handler is the
source's own.
"""

from __future__ import annotations

import os
import pkgutil
import sys
from collections.abc import Mapping
from typing import Any

# Python put this script's folder (billhub's tests/peers) first on the path; the peer's own
# packages must not be shadowed by billhub's modules.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from airbyte_cdk.entrypoint import AirbyteEntrypoint, launch  # noqa: E402  (after the path is cleaned)
from source_stripe import SourceStripe  # noqa: E402


class EmulatedStripe(SourceStripe):  # type: ignore[misc]  # the peer's class, untyped here
    def _read_and_parse_yaml_file(self, path_to_yaml_file: str) -> Mapping[str, Any]:
        data = pkgutil.get_data("source_stripe", path_to_yaml_file)
        assert data is not None, path_to_yaml_file
        manifest: dict[str, Any] = self._parse(data.decode())
        requester = manifest["definitions"]["base_requester"]
        assert requester["url_base"] == "https://api.stripe.com/v1", requester["url_base"]
        requester["url_base"] = os.environ["BILLHUB_STRIPE_EMULATOR"] + "/v1"
        return manifest


def main() -> None:
    emulator = os.environ["BILLHUB_STRIPE_EMULATOR"]
    if not emulator.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise SystemExit(f"not a loopback emulator: {emulator}")
    args = sys.argv[1:]
    # as source_stripe.run builds its source: from the catalog, config and state named in args
    catalog, config, state = (AirbyteEntrypoint.extract_catalog(args), AirbyteEntrypoint.extract_config(args),
                              AirbyteEntrypoint.extract_state(args))
    source = EmulatedStripe(EmulatedStripe.read_catalog(catalog) if catalog else None,
                            EmulatedStripe.read_config(config) if config else None,
                            EmulatedStripe.read_state(state) if state else None)
    launch(source, args)


if __name__ == "__main__":
    main()
