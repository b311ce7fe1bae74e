"""OpenAI-compatible LLM access: structured output, n-sampling, retries, cache, usage."""
