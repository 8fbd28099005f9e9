"""The inspection's input errors are protocol errors, with a machine-readable rule."""

import pytest

from ledgersync.protocol import ProtocolError, UnreadableInput, inspect_text


@pytest.mark.parametrize(
    ("text", "rule", "message"),
    [
        ("   ", "empty", "input is empty"),
        ("{not json", "json", "input is not valid JSON"),
        ("abc", "hex", "the input is not valid hex"),
        ("[1]", "hex", "item 0 is not a hex string"),
        ('{"m/": "zz"}', "hex", "key 'm/' is not valid hex"),
        ("true", "hex", "the input is not valid hex"),
    ],
)
def test_unreadable_input_names_its_rule(text: str, rule: str, message: str) -> None:
    with pytest.raises(UnreadableInput) as info:
        inspect_text(text)
    assert isinstance(info.value, ProtocolError)
    assert info.value.rule == rule
    assert str(info.value).startswith(message)
