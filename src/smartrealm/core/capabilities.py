"""SMART capability strings this realm defines or relies on beyond SMART App Launch 2.2."""

from __future__ import annotations

# A server that lists this in its smart-configuration ``capabilities`` accepts an access
# token whose ``aud`` also names other servers of the same AS (docs/behaviour.md "Which
# servers share a token"). Apps decide on token reuse with it; the AS refuses a shared token
# for a server that does not list it.
MULTI_AUD_TOKEN = "auth-multi-aud-token"
