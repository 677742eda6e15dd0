"""The engine's one way of asking for a person (DESIGN.md section 9).

attention_needed is sent inside the engine's transaction; the exceptions app receives it and
opens (or joins) the case in that same transaction. The engine never imports exceptions.

Arguments: event, reason_code (str), detail (str), owner (Team | None, or a user), step (str),
fingerprint_key (str: what makes two cases "the same problem": the error class or missing field).
"""

from django.dispatch import Signal

attention_needed = Signal()
