"""support-triage domain core: embedders, language detection, heads, knowledge base, bundles.

No HTTP or CLI code lives here; ``api`` and ``training`` are adapters around it.
"""

__version__ = "0.1.0"
