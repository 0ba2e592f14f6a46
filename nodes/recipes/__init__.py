"""Recipes: one module per job kind — what to run on which node and how to read the answer.

No Django here (checked by import-linter): a recipe turns a cluster and its nodes
(plain values) into a :class:`~nodes.recipes.plan.Plan` and parses command output.
"""
