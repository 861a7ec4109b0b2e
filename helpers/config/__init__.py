"""Configuration: experiments, profiles, settings and the method registry as data (torch-free)."""
