"""The warning category of bytenite-nb (stdlib only, so ``%load_ext`` can name it without
importing the client). ``bytenite_nb.api.errors.ByteniteWarning`` is this class."""

from __future__ import annotations

__all__ = ["ByteniteWarning"]


class ByteniteWarning(UserWarning):
    """Something worked but may not be what you meant (an unknown template id in a filter,
    results left out of a concatenation); the notebook magics print it as one line."""
