"""Middleware of our own.

InputCleaningMiddleware: input cleaning for every request, before any view, form or API schema sees it
(console.input says what is refused and why): a body over REQUEST_MAX_BYTES is 413; a NUL character in the path,
a header, a cookie, a query parameter or a form field, and a JSON body that is malformed, nested too deeply or
holds NaN/Infinity are 400. The API gets JSON {code, message}; pages get a plain page saying what to fix.

ApiJsonErrorsMiddleware: under /api/ every error is JSON {code, message}, whatever made it (an unknown path,
a method not allowed, Django's own 400 or 500 pages)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from console.api_errors import code_for
from console.input import InputRefused, check_text, json_load, strict_int

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
API_PREFIX = "/api/"


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def too_large(limit: int) -> InputRefused:
    return InputRefused(f"The request body is larger than {limit:,} bytes, the most Proctor accepts.",
                        status=413, code="payload_too_large")


def check_request(request: HttpRequest) -> None:
    limit = settings.REQUEST_MAX_BYTES
    length = strict_int(request.META.get("CONTENT_LENGTH") or "0")
    if length is None or length < 0:
        raise InputRefused("The Content-Length header is not a number of bytes.")
    if length > limit:
        raise too_large(limit)
    check_text(request.path, "The address")
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            check_text(value, f"The {key[5:].replace('_', '-').title()} header")
    for name, value in request.COOKIES.items():
        check_text(name + value, f"The cookie “{name[:40]}”")
    _check_fields(request.GET, "query parameter")
    if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
        return
    if request.content_type == "multipart/form-data":
        try:
            _check_fields(request.POST, "form field")
        except RequestDataTooBig:
            raise too_large(limit) from None
        for name, upload in request.FILES.items():
            check_text(name + (upload.name or ""), "A file's name")
        return
    body = request.body  # chunked, it came without a Content-Length
    if len(body) > limit:
        raise too_large(limit)
    if request.content_type == "application/x-www-form-urlencoded":
        _check_fields(request.POST, "form field")
    elif body and (is_api(request) or "json" in request.content_type):  # the API reads any body as JSON
        json_load(body, where="The request body")


def _check_fields(fields, kind: str) -> None:
    for name, values in fields.lists():
        check_text(name, f"The name of a {kind}")
        for value in values:
            if isinstance(value, str):
                check_text(value, f"The {kind} “{name[:60]}”")


def refusal(request: HttpRequest, refused: InputRefused) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"code": refused.code, "message": str(refused)}, status=refused.status)
    template = "413.html" if refused.status == 413 else "400.html"
    return HttpResponse(render_to_string(template, {"message": str(refused)}), status=refused.status)


class InputCleaningMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            check_request(request)
        except InputRefused as refused:
            return refusal(request, refused)
        return self.get_response(request)


class ApiJsonErrorsMiddleware:
    """An error answer under /api/ that is not JSON yet becomes {code, message} with the same status (and
    headers such as Allow). A traceback page never reaches an API client: Django logged the error already."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (response.status_code < 400 or not is_api(request)
                or response.get("Content-Type", "").startswith("application/json")):
            return response
        status = response.status_code
        json_response = JsonResponse({"code": code_for(status), "message": _api_message(request, response)},
                                     status=status)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                json_response[header] = response[header]
        json_response._has_been_logged = getattr(response, "_has_been_logged", False)
        return json_response


def _api_message(request: HttpRequest, response: HttpResponse) -> str:
    if response.status_code == 404:
        return f"There is no API operation at {request.path[:200]}; the operations are listed at /api/v1/docs."
    if response.status_code == 405:
        return f"{request.method[:20]} is not allowed here; allowed: {response.get('Allow', 'none')}."
    if response.status_code >= 500:
        return "Something went wrong on our side; it was logged. Try again in a moment."
    return f"{response.reason_phrase}."
