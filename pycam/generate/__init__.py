"""Text generated from the product definition: one function per consumer file.

Pure functions (definition in, text out) so both engines and the consistency tests
produce and compare the same bytes.
"""
