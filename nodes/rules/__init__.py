"""Inventory rules without Django: names, addresses, networks, versions and SSH credentials.

The models, forms and serializers call these, so every entry point refuses the same input with
the same message.
"""
