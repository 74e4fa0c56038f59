"""The automatic-differentiation engine: primitives, traces, transformations, IR."""
