from __future__ import annotations

import os

# LiteLLM must not fetch its price map over the network in tests.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
