"""Pure types and rules: identifiers, event kinds, status derivation, publication policy.

Nothing here does I/O or imports a framework, so every rule can be property-tested alone.
"""
