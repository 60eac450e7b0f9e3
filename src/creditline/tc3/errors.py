"""Tencent Cloud API 3.0 error codes, and how creditline's domain errors map onto them.

Every answer of the Tencent-compatible endpoint is HTTP 200; an error is a ``Response``
carrying ``Error.Code`` and ``Error.Message`` beside the ``RequestId``, as the SDK expects.
"""

from __future__ import annotations

from creditline.errors import (
    CreditlineError,
    InsufficientCredit,
    InsufficientPool,
    InvalidAmount,
    InvalidInput,
    NotFound,
    NotPermitted,
)

SECRET_ID_NOT_FOUND = "AuthFailure.SecretIdNotFound"
SIGNATURE_FAILURE = "AuthFailure.SignatureFailure"
SIGNATURE_EXPIRE = "AuthFailure.SignatureExpire"
INVALID_AUTHORIZATION = "AuthFailure.InvalidAuthorization"
INVALID_ACTION = "InvalidAction"
MISSING_PARAMETER = "MissingParameter"
INVALID_PARAMETER = "InvalidParameter"
INVALID_PARAMETER_VALUE = "InvalidParameterValue"
CREDIT_AMOUNT_OUT_OF_RANGE = "InvalidParameterValue.CreditAmountOutOfRange"
UNAUTHORIZED_OPERATION = "UnauthorizedOperation"
UNSUPPORTED_OPERATION = "UnsupportedOperation"
RESOURCE_NOT_FOUND = "ResourceNotFound"
FAILED_OPERATION = "FailedOperation"
UIN_NOT_AGENT = "FailedOperation.UinNotAgent"
REQUEST_LIMIT_EXCEEDED = "RequestLimitExceeded"
#: Tencent's common code for a request received twice (its legacy APIs' error 4500).
REPLAY_ATTACK = "InvalidRequest.ReplayAttack"
INTERNAL_ERROR = "InternalError"


class TencentError(Exception):
    """A refusal in Tencent's words: an ``Error.Code`` and a message for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def from_domain(error: CreditlineError) -> TencentError:
    """The Tencent answer for a refusal of the core.

    Pool and credit limits are ``CreditAmountOutOfRange`` as Tencent documents for
    AllocateCustomerCredit; another partner's object is ``ResourceNotFound``, exactly as a
    missing one, because the core already makes the two indistinguishable.
    """
    if isinstance(error, InsufficientPool | InsufficientCredit):
        return TencentError(CREDIT_AMOUNT_OUT_OF_RANGE, error.message)
    if isinstance(error, NotFound):
        return TencentError(RESOURCE_NOT_FOUND, error.message)
    if isinstance(error, NotPermitted):
        return TencentError(UNAUTHORIZED_OPERATION, error.message)
    if isinstance(error, InvalidAmount | InvalidInput) or error.kind == "invalid":
        return TencentError(INVALID_PARAMETER_VALUE, error.message)
    if error.kind == "not_found":
        return TencentError(RESOURCE_NOT_FOUND, error.message)
    if error.kind == "forbidden":
        return TencentError(UNAUTHORIZED_OPERATION, error.message)
    return TencentError(FAILED_OPERATION, error.message)
