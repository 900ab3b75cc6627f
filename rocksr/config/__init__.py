"""The configuration's defaults, one typed section per module (the schema validates and documents).

Kept empty on purpose: a stage's code hash covers only the sections it imports.
"""
