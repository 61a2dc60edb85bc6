"""Model backends: scalar-head reward models, generative guards, the embedded default, vLLM pooling."""
