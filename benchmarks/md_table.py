"""Markdown helpers shared by the benchmarks' result writers."""


def cell(text: str) -> str:
    """Text in a markdown table cell: a layout's text part is separated by '|', which would split the cell."""
    return text.replace("|", r"\|")
