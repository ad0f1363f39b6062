"""Errors raised by the claims package.

ClaimsError                 base; every error has a stable ``code`` and a human ``message``
 ├── EmptyTextError         the text holds nothing but whitespace
 ├── TextTooLongError       the text is over the configured character limit
 ├── CalibrationError       too few reviewed claims to fit a calibration
 └── UpstreamError          a model endpoint (LLM) is down or answered badly
"""


class ClaimsError(Exception):
    code = "claims_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EmptyTextError(ClaimsError):
    code = "empty_text"


class TextTooLongError(ClaimsError):
    code = "text_too_long"


class CalibrationError(ClaimsError):
    code = "too_few_reviews"


class UpstreamError(ClaimsError):
    code = "upstream_error"
