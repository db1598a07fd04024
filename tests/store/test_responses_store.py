"""The response store on SQLite and PostgreSQL: items stored once, lists of ids, history,
pagination, conversations, tenant isolation and concurrent appends."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from agentrig.items import (
    FunctionCall,
    FunctionCallOutput,
    Message,
    Reasoning,
    SummaryText,
    assistant_message,
    user_message,
)
from agentrig.store import Database
from agentrig.store.models import ItemListRow, StoredItemRow
from agentrig.store.responses import ResponseStore

A, B = "tnt_a", "tnt_b"


@pytest.fixture
def store(database: Database) -> ResponseStore:
    return ResponseStore(database)


async def rows(database: Database, table: type) -> int:
    async with database.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)))


def texts(items) -> list[str]:
    return [item.text if isinstance(item, Message) else item.type for item in items]


def user(text_: str, item_id: str | None = None) -> Message:
    message = user_message(text_)
    message.id = item_id
    return message


def resource(response_id: str, status: str = "completed", **extra) -> dict:
    return {"id": response_id, "object": "response", "status": status, "model": "m"} | extra


async def test_save_items_assigns_ids_by_type_and_is_idempotent(store, database):
    items = [
        user("hi"),
        FunctionCall(call_id="c1", name="add", arguments='{"a": 1}'),
        FunctionCallOutput(call_id="c1", output="1"),
        Reasoning(summary=[SummaryText(text="thinking")]),
    ]
    saved = await store.save_items(A, items)
    assert [item.id.split("_")[0] for item in saved] == ["msg", "fc", "fco", "rs"]
    assert all(item.id is None for item in items)  # the caller's items are not changed
    assert await rows(database, StoredItemRow) == 4

    again = await store.save_items(A, [*saved, saved[0]])
    assert [item.id for item in again] == [item.id for item in [*saved, saved[0]]]
    assert await rows(database, StoredItemRow) == 4

    # An id already stored keeps its stored content: items are immutable.
    await store.save_items(A, [user("changed", saved[0].id)])
    conversation = await store.create_conversation(A, {}, [saved[0]])
    assert texts(await store.conversation_items(A, conversation["id"])) == ["hi"]


async def test_create_get_and_update_a_response(store, database):
    first = assistant_message("partial")
    created = await store.create_response(
        A,
        "resp_1",
        resource("resp_1", "in_progress", output=["ignored"], usage=None),
        [user("question")],
        [first],
    )
    assert created.input is not None and created.input[0].id.startswith("msg_")
    response = await store.get_response(A, "resp_1")
    assert response is not None
    assert (response.status, response.model, response.input) == ("in_progress", "m", None)
    assert "output" not in response.resource and response.resource["usage"] is None
    assert texts(response.output) == ["partial"]
    assert response.to_json() == response.resource | {"output": [first.to_json()]}
    assert response.created_at.tzinfo is not None

    final = assistant_message("final answer")
    assert await store.update_response(A, "resp_1", resource("resp_1"), [final])
    response = await store.get_response(A, "resp_1", include_input=True)
    assert response.status == "completed"
    assert texts(response.output) == ["final answer"]
    assert texts(response.input) == ["question"]
    assert response.updated_at >= response.created_at
    assert await rows(database, StoredItemRow) == 2  # the replaced output item is gone

    # Without output_items only the resource changes.
    assert await store.update_response(A, "resp_1", resource("resp_1", "incomplete"))
    response = await store.get_response(A, "resp_1")
    assert (response.status, texts(response.output)) == ("incomplete", ["final answer"])
    assert texts(await store.input_items(A, "resp_1")) == ["question"]

    # An item of the old and the new output stays (an in-progress item, then final).
    extra = assistant_message("more")
    assert await store.update_response(A, "resp_1", resource("resp_1"), [final, extra])
    assert texts((await store.get_response(A, "resp_1")).output) == ["final answer", "more"]
    assert await rows(database, StoredItemRow) == 3

    assert not await store.update_response(A, "resp_missing", resource("resp_missing"))
    assert await store.get_response(A, "resp_missing") is None


async def test_a_failed_create_leaves_nothing_behind(store, database):
    await store.create_response(A, "resp_1", resource("resp_1"), [user("a")], [])
    with pytest.raises(IntegrityError):
        await store.create_response(A, "resp_1", resource("resp_1"), [user("b")], [])
    assert await rows(database, StoredItemRow) == 1
    assert await rows(database, ItemListRow) == 1


async def test_history_follows_a_three_response_chain_oldest_first(store):
    call = FunctionCall(call_id="c1", name="lookup", arguments="{}")
    await store.create_response(
        A, "resp_1", resource("resp_1"), [user("one")], [assistant_message("reply one")]
    )
    await store.create_response(
        A, "resp_2", resource("resp_2"), [user("two")], [call], previous_response_id="resp_1"
    )
    await store.create_response(
        A,
        "resp_3",
        resource("resp_3"),
        [FunctionCallOutput(call_id="c1", output="found")],
        [assistant_message("reply three")],
        previous_response_id="resp_2",
    )
    # A branch from resp_1 does not see resp_2 or resp_3.
    await store.create_response(
        A, "resp_x", resource("resp_x"), [user("other")], [], previous_response_id="resp_1"
    )

    assert texts(await store.history(A, "resp_3")) == [
        "one",
        "reply one",
        "two",
        "function_call",
        "function_call_output",
        "reply three",
    ]
    assert texts(await store.history(A, "resp_2")) == ["one", "reply one", "two", "function_call"]
    assert texts(await store.history(A, "resp_x")) == ["one", "reply one", "other"]
    assert await store.history(A, "resp_missing") is None

    # The chain stops at a deleted response.
    assert await store.delete_response(A, "resp_2")
    assert texts(await store.history(A, "resp_3")) == ["function_call_output", "reply three"]


async def test_list_input_items_pages_with_after_limit_and_order(store):
    inputs = [user(f"u{n}") for n in range(5)]
    created = await store.create_response(A, "resp_1", resource("resp_1"), inputs, [])
    ids = [item.id for item in created.input]

    page = await store.list_input_items(A, "resp_1", limit=2)  # newest first by default
    assert texts(page.data) == ["u4", "u3"]
    assert (page.first_id, page.last_id, page.has_more) == (ids[4], ids[3], True)
    page = await store.list_input_items(A, "resp_1", after=page.last_id, limit=2)
    assert texts(page.data) == ["u2", "u1"] and page.has_more
    page = await store.list_input_items(A, "resp_1", after=page.last_id, limit=2)
    assert texts(page.data) == ["u0"] and not page.has_more

    page = await store.list_input_items(A, "resp_1", order="asc", limit=3)
    assert texts(page.data) == ["u0", "u1", "u2"] and page.has_more
    page = await store.list_input_items(A, "resp_1", order="asc", after=ids[2], limit=3)
    assert texts(page.data) == ["u3", "u4"] and not page.has_more
    assert page.to_json() == {
        "object": "list",
        "data": [item.to_json() for item in created.input[3:]],
        "first_id": ids[3],
        "last_id": ids[4],
        "has_more": False,
    }
    page = await store.list_input_items(A, "resp_1", order="asc", after=ids[4])
    assert (page.data, page.first_id, page.last_id, page.has_more) == ([], None, None, False)
    page = await store.list_input_items(A, "resp_1", limit=100)
    assert len(page.data) == 5 and not page.has_more

    with pytest.raises(ValueError, match="no item 'msg_nope'"):
        await store.list_input_items(A, "resp_1", after="msg_nope")
    with pytest.raises(ValueError, match="limit"):
        await store.list_input_items(A, "resp_1", limit=0)
    assert await store.list_input_items(A, "resp_missing") is None


async def test_conversations(store, database):
    conversation = await store.create_conversation(A, {"topic": "x"}, [user("first")])
    conversation_id = conversation["id"]
    assert conversation_id.startswith("conv_")
    assert conversation["object"] == "conversation" and conversation["metadata"] == {"topic": "x"}
    assert isinstance(conversation["created_at"], int)
    assert await store.get_conversation(A, conversation_id) == conversation

    updated = await store.update_conversation(A, conversation_id, {"topic": "y"})
    assert updated == conversation | {"metadata": {"topic": "y"}}
    assert await store.get_conversation(A, conversation_id) == updated

    added = await store.add_conversation_items(
        A, conversation_id, [assistant_message("second"), user("third")]
    )
    assert [item.id is not None for item in added] == [True, True]
    assert texts(await store.conversation_items(A, conversation_id)) == ["first", "second", "third"]

    page = await store.list_conversation_items(A, conversation_id, limit=2)
    assert texts(page.data) == ["third", "second"] and page.has_more
    page = await store.list_conversation_items(A, conversation_id, after=page.last_id)
    assert texts(page.data) == ["first"] and not page.has_more

    assert texts([await store.get_conversation_item(A, conversation_id, added[0].id)]) == ["second"]
    assert await store.delete_conversation_item(A, conversation_id, added[0].id)
    assert not await store.delete_conversation_item(A, conversation_id, added[0].id)
    assert await store.get_conversation_item(A, conversation_id, added[0].id) is None
    assert texts(await store.conversation_items(A, conversation_id)) == ["first", "third"]
    assert await rows(database, StoredItemRow) == 2  # nothing else listed "second"

    # Positions keep growing after a delete: a new item goes last.
    await store.add_conversation_items(A, conversation_id, [user("fourth")])
    assert texts(await store.conversation_items(A, conversation_id)) == [
        "first",
        "third",
        "fourth",
    ]

    assert await store.delete_conversation(A, conversation_id)
    assert not await store.delete_conversation(A, conversation_id)
    assert await store.get_conversation(A, conversation_id) is None
    assert await store.conversation_items(A, conversation_id) is None
    assert await store.add_conversation_items(A, conversation_id, [user("late")]) is None
    assert await rows(database, StoredItemRow) == 0
    assert await rows(database, ItemListRow) == 0


async def test_an_item_is_stored_once_though_a_response_and_a_conversation_list_it(store, database):
    conversation = (await store.create_conversation(A, {}, []))["id"]
    for turn in range(1, 4):
        question = (await store.save_items(A, [user(f"q{turn}")]))[0]
        answer = assistant_message(f"a{turn}")
        history = await store.conversation_items(A, conversation)
        await store.create_response(
            A,
            f"resp_{turn}",
            resource(f"resp_{turn}"),
            [*history, question],  # the whole conversation is the model's input
            [answer],
            conversation_id=conversation,
        )
        await store.add_conversation_items(A, conversation, [question, answer])

    # 6 items, however many lists name them.
    assert await rows(database, StoredItemRow) == 6
    # Conversation: 6 rows; responses: inputs 1 + 3 + 5, outputs 3.
    assert await rows(database, ItemListRow) == 6 + 9 + 3
    assert texts(await store.conversation_items(A, conversation)) == [
        "q1",
        "a1",
        "q2",
        "a2",
        "q3",
        "a3",
    ]
    assert (await store.get_response(A, "resp_2")).conversation_id == conversation


async def test_deleting_a_response_keeps_the_items_a_conversation_still_lists(store, database):
    conversation = (await store.create_conversation(A, {}, []))["id"]
    shared, answer = await store.save_items(A, [user("kept"), assistant_message("kept too")])
    await store.add_conversation_items(A, conversation, [shared, answer])
    await store.create_response(
        A, "resp_1", resource("resp_1"), [shared, user("only here")], [answer]
    )
    assert await rows(database, StoredItemRow) == 3

    assert await store.delete_response(A, "resp_1")
    assert not await store.delete_response(A, "resp_1")
    assert await store.get_response(A, "resp_1") is None
    assert await rows(database, StoredItemRow) == 2  # "only here" went with the response
    assert texts(await store.conversation_items(A, conversation)) == ["kept", "kept too"]

    # And the other way round: a response keeps what a deleted conversation listed.
    await store.create_response(A, "resp_2", resource("resp_2"), [shared], [])
    assert await store.delete_conversation(A, conversation)
    assert await rows(database, StoredItemRow) == 1
    assert texts(await store.input_items(A, "resp_2")) == ["kept"]


async def test_another_tenant_sees_nothing_and_changes_nothing(store, database):
    item = user("secret", "msg_chosen")
    await store.create_response(A, "resp_a", resource("resp_a"), [item], [assistant_message("x")])
    conversation = (await store.create_conversation(A, {"k": "v"}, [item]))["id"]
    before = (await rows(database, StoredItemRow), await rows(database, ItemListRow))

    assert await store.get_response(B, "resp_a") is None
    assert await store.input_items(B, "resp_a") is None
    assert await store.list_input_items(B, "resp_a") is None
    assert await store.history(B, "resp_a") is None
    assert not await store.update_response(B, "resp_a", resource("resp_a", "failed"), [])
    assert not await store.delete_response(B, "resp_a")
    assert await store.get_conversation(B, conversation) is None
    assert await store.update_conversation(B, conversation, {"k": "stolen"}) is None
    assert await store.conversation_items(B, conversation) is None
    assert await store.list_conversation_items(B, conversation) is None
    assert await store.get_conversation_item(B, conversation, "msg_chosen") is None
    assert not await store.delete_conversation_item(B, conversation, "msg_chosen")
    assert await store.add_conversation_items(B, conversation, [user("intruder")]) is None
    assert not await store.delete_conversation(B, conversation)
    with pytest.raises(LookupError):
        await store.create_response(
            B, "resp_b", resource("resp_b"), [], [], previous_response_id="resp_a"
        )
    with pytest.raises(LookupError):
        await store.create_response(
            B, "resp_b", resource("resp_b"), [], [], conversation_id=conversation
        )
    assert (await rows(database, StoredItemRow), await rows(database, ItemListRow)) == before

    # The owner's objects are intact.
    assert (await store.get_response(A, "resp_a")).status == "completed"
    assert (await store.get_conversation(A, conversation))["metadata"] == {"k": "v"}
    assert texts(await store.history(A, "resp_a")) == ["secret", "x"]

    # The same client-chosen item id is a different item in another tenant.
    await store.create_response(B, "resp_b", resource("resp_b"), [user("mine", "msg_chosen")], [])
    assert texts(await store.input_items(B, "resp_b")) == ["mine"]
    assert texts(await store.input_items(A, "resp_a")) == ["secret"]
    assert await store.delete_response(B, "resp_b")
    assert texts(await store.conversation_items(A, conversation)) == ["secret"]


async def test_concurrent_appends_keep_each_batch_contiguous(store, database):
    conversation = (await store.create_conversation(A, {}, [user("start")]))["id"]
    batches = [[user(f"{batch}.{n}") for n in range(5)] for batch in range(20)]
    results = await asyncio.gather(
        *(store.add_conversation_items(A, conversation, batch) for batch in batches)
    )
    assert all(len(result) == 5 for result in results)

    found = texts(await store.conversation_items(A, conversation))
    assert found[0] == "start" and len(found) == 101
    runs = [found[start : start + 5] for start in range(1, 101, 5)]
    assert sorted(runs) == sorted([f"{batch}.{n}" for n in range(5)] for batch in range(20))

    async with database.engine.connect() as connection:
        positions = (
            await connection.scalars(
                text("SELECT position FROM item_lists WHERE owner_id = :id ORDER BY position"),
                {"id": conversation},
            )
        ).all()
    assert positions == list(range(101))


async def test_concurrent_creates_share_transactions_and_a_bad_link_fails_alone(store, database):
    await store.create_response(A, "resp_root", resource("resp_root"), [user("root")], [])
    await store.create_conversation(B)  # another tenant's conversation: not a link for A

    def create(n: int, **links):
        return store.create_response(
            A,
            f"resp_{n}",
            resource(f"resp_{n}"),
            [user(f"q{n}")],
            [assistant_message(f"a{n}")],
            **links,
        )

    calls = [create(n, previous_response_id="resp_root") for n in range(40)]
    calls.append(create(98, previous_response_id="resp_missing"))
    calls.append(create(99, conversation_id="conv_missing"))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(not isinstance(result, BaseException) for result in results[:40])
    assert isinstance(results[40], LookupError) and "resp_missing" in str(results[40])
    assert isinstance(results[41], LookupError) and "conv_missing" in str(results[41])
    assert await store.get_response(A, "resp_98") is None
    for n in (0, 17, 39):
        assert texts(await store.history(A, f"resp_{n}")) == ["root", f"q{n}", f"a{n}"]
    assert await rows(database, StoredItemRow) == 1 + 80


async def test_creates_added_to_a_conversation_get_contiguous_positions(store):
    conversation = await store.create_conversation(A, items=[user("opening")])

    def create(n: int):
        return store.create_response(
            A,
            f"resp_{n}",
            resource(f"resp_{n}"),
            [user(f"q{n}")],
            [assistant_message(f"a{n}")],
            conversation_id=conversation["id"],
            add_to_conversation=True,
        )

    await asyncio.gather(*(create(n) for n in range(30)))
    listed = texts(await store.conversation_items(A, conversation["id"]))
    assert listed[0] == "opening" and len(listed) == 61
    pairs = [listed[i : i + 2] for i in range(1, 61, 2)]
    assert sorted(pairs) == sorted([f"q{n}", f"a{n}"] for n in range(30))  # never interleaved
    page = await store.list_conversation_items(A, conversation["id"], limit=100, order="asc")
    assert [item.id for item in page.data] == [
        item.id for item in await store.conversation_items(A, conversation["id"])
    ]


async def test_a_deleted_conversation_refuses_the_response_and_stores_nothing(store, database):
    conversation = await store.create_conversation(A)
    await store.delete_conversation(A, conversation["id"])
    with pytest.raises(LookupError):
        await store.create_response(
            A,
            "resp_1",
            resource("resp_1"),
            [user("q")],
            [],
            conversation_id=conversation["id"],
            add_to_conversation=True,
        )
    assert await rows(database, StoredItemRow) == 0
    assert await store.get_response(A, "resp_1") is None
