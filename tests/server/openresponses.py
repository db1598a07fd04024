"""Validate agentrig's Responses API JSON against the Open Responses spec (openresponses.org).

``validate_response(resource)`` checks a whole ``ResponseResource``; ``validate_event(event)``
checks one streamed event against the schema for its ``type``; ``validate_item(item)`` checks
an item (as in ``output`` or an input-items listing); ``validate_stream(events)`` checks every
event and the stream's shape (numbering, start, end, output indexes). Each raises
:class:`SpecViolation` with the path and the reason. The conformance tests of the server
reuse them. ``validate_with_openai_sdk(resource_or_event)`` is a second opinion: the openai
SDK's own models, validated strictly (the SDK itself does not validate), so that a field that
OpenAI's clients expect but the spec does not list is noticed too.

The spec is an OpenAPI 3.1 document, so its schemas are JSON Schema 2020-12: they are
validated with ``jsonschema`` after resolving ``#/components/...`` references through a
``referencing`` registry that holds the whole document. The copy is looked up in
``$OPENRESPONSES_SPEC``, else in ``../shared/specs`` beside the project root (where the
project's shared data lives; it is not copied into the repository); without it the
calling test fails.

Errata: the copy (llama-stack docs/static/openresponses-spec.json, d1b6632) allows only
``null`` for ``JsonSchemaResponseFormat.schema``, a generator slip that upstream fixed
(openresponses/openresponses schema/components/schemas/JsonSchemaResponseFormat.json:
an object or null). OpenAI echoes the schema, so this module allows an object, as upstream.
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_NAME = "openresponses-openapi.json"
SPEC_URI = "urn:agentrig:openresponses-spec"
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


class SpecViolation(AssertionError):
    """A JSON document that the Open Responses spec does not allow."""


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def spec_path() -> Path:
    """Where the spec is: ``$OPENRESPONSES_SPEC``, else the shared copy beside the project."""
    return Path(
        os.environ.get("OPENRESPONSES_SPEC") or PROJECT_ROOT.parent / "shared" / "specs" / SPEC_NAME
    )


@cache
def spec() -> dict[str, Any]:
    """The spec document with the errata above applied."""
    path = spec_path()
    if not path.is_file():
        raise FileNotFoundError(f"the Open Responses spec is not at {path}")
    document = json.loads(path.read_text())
    schemas = document["components"]["schemas"]
    schemas["JsonSchemaResponseFormat"]["properties"]["schema"] = {
        "anyOf": [{"type": "object"}, {"type": "null"}]
    }
    return document


@cache
def event_schemas() -> dict[str, str]:
    """Each streaming event type (``response.created``...) and the name of its schema."""
    names = {}
    for name, schema in spec()["components"]["schemas"].items():
        kind = schema.get("properties", {}).get("type", {})
        if name.endswith("StreamingEvent") and kind.get("enum"):
            names[kind["enum"][0]] = name
    return names


@cache
def validator(schema_name: str) -> Draft202012Validator:
    """A validator of the spec's component schema ``schema_name``."""
    if schema_name not in spec()["components"]["schemas"]:
        raise KeyError(f"the spec has no schema {schema_name!r}")
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry = Registry().with_resource(SPEC_URI, resource)
    root = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(root, registry=registry)


def _path(error: ValidationError) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def check(schema_name: str, instance: Any, what: str) -> None:
    """Raise :class:`SpecViolation` unless ``instance`` matches the schema ``schema_name``."""
    errors = list(validator(schema_name).iter_errors(instance))
    if not errors:
        return
    best = best_match(errors)
    deepest = best
    while deepest.context:  # a oneOf/anyOf failure: show the branch that came closest
        deepest = best_match(deepest.context)
    detail = f"{deepest.message} (at {_path(deepest)})" if deepest is not best else ""
    excerpt = json.dumps(best.instance, default=str)[:300]
    raise SpecViolation(
        f"{what} does not match {schema_name}: at {_path(best)}: {best.message}"
        + (f"; closest branch: {detail}" if detail else "")
        + f"; value: {excerpt}"
    )


def validate_response(resource: Mapping[str, Any]) -> None:
    """A ``ResponseResource``, with every required field (``null`` only where allowed)."""
    check("ResponseResource", resource, f"response {resource.get('id')!r}")


def validate_item(item: Mapping[str, Any]) -> None:
    """An output or input item as the API returns it (the spec's ``ItemField``)."""
    check("ItemField", item, f"{item.get('type')} item {item.get('id')!r}")


def validate_event(event: Mapping[str, Any]) -> None:
    """One streamed event, against the schema of its ``type``."""
    kind = event.get("type")
    name = event_schemas().get(kind)  # type: ignore[arg-type]
    if name is None:
        raise SpecViolation(f"the spec has no streaming event of type {kind!r}")
    check(name, event, f"event #{event.get('sequence_number')} ({kind})")


def validate_stream(events: Iterable[Mapping[str, Any]]) -> None:
    """Every event of one response's stream, and its shape: sequence numbers 0, 1, 2…;
    ``response.created`` first and one terminal event last; each output item added once,
    with indexes 0, 1, 2… in order, done once after it was added, and deltas only between."""
    events = list(events)
    for event in events:
        validate_event(event)
    numbers = [event["sequence_number"] for event in events]
    if numbers != list(range(len(events))):
        raise SpecViolation(f"sequence numbers are not 0, 1, 2…: {numbers}")
    kinds = [event["type"] for event in events]
    if not kinds or kinds[0] != "response.created":
        raise SpecViolation(f"the stream does not start with response.created: {kinds[:1]}")
    if kinds[-1] not in TERMINAL or any(kind in TERMINAL for kind in kinds[:-1]):
        raise SpecViolation(f"the stream must end with exactly one of {TERMINAL}: {kinds}")
    open_items: dict[int, str] = {}
    finished: dict[int, str] = {}
    for event in events:
        index, number = event.get("output_index"), event["sequence_number"]
        if event["type"] == "response.output_item.added":
            if index != len(open_items) + len(finished):
                raise SpecViolation(f"event #{number}: output item added at index {index}")
            open_items[index] = event["item"]["id"]
        elif event["type"] == "response.output_item.done":
            if open_items.get(index) != event["item"]["id"]:
                raise SpecViolation(f"event #{number}: item {index} done but not open as such")
            finished[index] = open_items.pop(index)
        elif index is not None and (
            index not in open_items or event.get("item_id", open_items[index]) != open_items[index]
        ):
            raise SpecViolation(f"event #{number} ({event['type']}) is for an item not open")
    if open_items:
        raise SpecViolation(f"output items never done: {sorted(open_items)}")
    final = events[-1]["response"]
    if final["status"] != "failed":
        streamed = [finished[index] for index in sorted(finished)]
        if [item["id"] for item in final["output"]] != streamed:
            raise SpecViolation(f"the final output is not the items streamed: {streamed}")


@cache
def _openai_event_models() -> dict[str, type[Any]]:
    from openai.types.responses import ResponseStreamEvent

    union = typing.get_args(ResponseStreamEvent)[0]  # Annotated[Union[...], discriminator]
    models = {}
    for model in typing.get_args(union):
        models[typing.get_args(model.model_fields["type"].annotation)[0]] = model
    return models


def validate_with_openai_sdk(document: Mapping[str, Any]) -> None:
    """Validate a response resource or a streamed event with the openai SDK's models."""
    from openai.types.responses import Response
    from pydantic import ValidationError as PydanticError

    kind = document.get("type")
    model = Response if document.get("object") == "response" else _openai_event_models().get(kind)
    if model is None:
        raise SpecViolation(f"the openai SDK has no event of type {kind!r}")
    try:
        model.model_validate(document)
    except PydanticError as exc:
        raise SpecViolation(
            f"the openai SDK's {model.__name__} rejects {kind or 'it'}: {exc}"
        ) from None
