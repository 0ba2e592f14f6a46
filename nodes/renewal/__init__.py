"""The opt-in certificate renewal policy of a cluster: when beat renews the panel's leaves and
rolls them out (``policy`` decides, pure; ``services`` acts; ``tasks`` is beat's entry)."""
