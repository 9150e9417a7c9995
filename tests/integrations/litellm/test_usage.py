"""litellm usage → Usage translation (objects and the standard logging payload's dict form)."""

from __future__ import annotations

from litellm.types.utils import CompletionTokensDetailsWrapper, PromptTokensDetailsWrapper, Usage

from a2a_llm_tracker.integrations._litellm_usage import litellm_usage, litellm_usage_cost, usage_is_zero


def test_usage_object_openai_details():
    """cached and reasoning are subsets; raw_usage is the plain dict."""
    u = litellm_usage(Usage(prompt_tokens=120, completion_tokens=30, total_tokens=150,
                            prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=64, audio_tokens=4),
                            completion_tokens_details=CompletionTokensDetailsWrapper(reasoning_tokens=12)))
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (120, 30, 150)
    assert (u.cached_input_tokens, u.reasoning_tokens, u.cache_write_tokens) == (64, 12, None)
    assert u.token_details == {"input_audio_tokens": 4}  # the analyzers' name, the one the catalog prices
    assert u.raw_usage["prompt_tokens_details"]["cached_tokens"] == 64


def test_usage_object_dict_from_logging_payload():
    """The usage_object dict of litellm's standard logging payload (note §2.4 sample), Anthropic-style top level."""
    raw = {"prompt_tokens": 800, "completion_tokens": 30, "total_tokens": 830,
           "prompt_tokens_details": {"text_tokens": 100, "cached_tokens": 500, "cache_write_tokens": 200,
                                     "cache_creation_tokens": 200,
                                     "cache_creation_token_details": {"ephemeral_5m_input_tokens": 150,
                                                                      "ephemeral_1h_input_tokens": 50}},
           "cache_creation_input_tokens": 200, "cache_read_input_tokens": 500,
           "server_tool_use": {"web_search_requests": 2}}
    u = litellm_usage(raw)
    assert (u.input_tokens, u.cached_input_tokens, u.cache_write_tokens) == (800, 500, 200)  # never 1500
    assert u.token_details == {"cache_write_5m": 150, "cache_write_1h": 50, "web_search_requests": 2}


def test_responses_shape_and_cost():
    """Responses-API usage (input_tokens/output_tokens) and the cost litellm attaches."""
    raw = {"input_tokens": 9, "output_tokens": 7, "total_tokens": 16, "input_tokens_details": {"cached_tokens": 5},
           "output_tokens_details": {"reasoning_tokens": 2}, "cost": 6.6e-05}
    u = litellm_usage(raw)
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens) == (9, 7, 5, 2)
    assert litellm_usage_cost(raw) == 6.6e-05


def test_zero_and_missing_are_not_usage():
    """litellm's Usage(0, 0, 0) placeholder and None mean 'not reported'."""
    assert usage_is_zero(Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0))
    assert litellm_usage(Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)) is None
    assert litellm_usage(None) is None and litellm_usage({}) is None


def test_inconsistent_subsets_dropped():
    """A cached count larger than the input is not trusted (the totals are kept)."""
    u = litellm_usage({"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 50},
                       "completion_tokens_details": {"reasoning_tokens": 9}})
    assert (u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_tokens) == (10, None, 5, None)
