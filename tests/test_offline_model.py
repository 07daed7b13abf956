"""The offline model: rep messages -> validated tool calls, questions, or a plain "can't".

One small CRM (the STORIES.md cast) and a fixed clock: Monday 2026-11-23 08:50 in
Europe/Lisbon, so every date below is exact. Expected arguments are written with
placeholders ($ines, $deal...) that stand for the ids of the records made here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agents.offline.chat import HELP, OfflineModel
from tests import factories as f
from tools import TOOLS, ToolContext

NOW = datetime(2026, 11, 23, 8, 50, tzinfo=ZoneInfo("Europe/Lisbon"))


@dataclass
class Crm:
    ctx: ToolContext
    ids: dict[str, str]

    def ask(self, text: str) -> AIMessage:
        return OfflineModel().respond([HumanMessage(text)], self.ctx)

    def calls(self, text: str) -> list[tuple[str, dict[str, Any]]]:
        reply = self.ask(text)
        assert reply.tool_calls, f"no tool call for {text!r}: {reply.content}"
        for call in reply.tool_calls:
            TOOLS[call["name"]].parse(call["args"])  # every call is valid as emitted
            assert call["id"].startswith("call_") and call["type"] == "tool_call"
        return [(c["name"], c["args"]) for c in reply.tool_calls]

    def expand(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("$"):
            return self.ids[value[1:]]
        if isinstance(value, list | tuple):
            return type(value)(self.expand(v) for v in value)
        if isinstance(value, dict):
            return {k: self.expand(v) for k, v in value.items()}
        return value


@pytest.fixture
def crm(session) -> Crm:  # type: ignore[no-untyped-def]
    w = f.world(session)
    w.priya.timezone = "Europe/Lisbon"
    session.flush()
    priya = f.actor(w.priya)
    borealis = f.create(session, priya, "company", name="Borealis Logistics", domain="borealis-logistics.example")
    nordlys = f.create(session, priya, "company", name="Nordlys Energy", domain="nordlys-energy.example")
    ines = f.create(session, priya, "contact", first_name="Ines", last_name="Duarte", title="Head of Operations",
                    email="ines.duarte@borealis-logistics.example", company_id=borealis.id)
    marco = f.create(session, priya, "contact", first_name="Marco", last_name="Bellini", title="CFO",
                     email="marco.bellini@borealis-logistics.example", company_id=borealis.id)
    ines2 = f.create(session, priya, "contact", first_name="Ines", last_name="Carvalho", title="Procurement",
                     email="ines.carvalho@nordlys-energy.example", company_id=nordlys.id)
    deal = f.create(session, priya, "deal", name="Borealis – Fleet Telematics", amount="48000",
                    company_id=borealis.id)
    nordlys_deal = f.create(session, priya, "deal", name="Nordlys – Grid Analytics", amount="30000",
                            company_id=nordlys.id)
    atlas = f.create(session, priya, "company", name="Atlas and Orion Freight")  # "and" inside a name
    task = f.create(session, priya, "task", title="Send revised quote to Borealis",
                    due_at=datetime(2026, 11, 26, 17, tzinfo=ZoneInfo("Europe/Lisbon")))
    task2 = f.create(session, priya, "task", title="Prepare QBR deck")
    # Another team's records: Priya must not be able to reach them by any name.
    eastwind = f.create(session, w.eve, "company", name="Eastwind Freight", domain="eastwind-freight.example")
    f.create(session, w.eve, "contact", first_name="Olga", last_name="Petrova", company_id=eastwind.id)
    session.commit()
    ids = {name: str(obj.id) for name, obj in locals().items()
           if name in {"borealis", "nordlys", "atlas", "ines", "marco", "ines2", "deal", "nordlys_deal", "task",
                       "task2"}}
    return Crm(ToolContext(actor=priya, session=session, now=NOW), ids)


STORY_BODY = ("they want the pilot in Jan, 48k -> 62k if we add the telematics module, send revised quote by thu")

# (what the rep types, the tool calls expected: [(tool, exact args)])
PHRASINGS: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = [
    # 1. log a call / meeting / note
    ("log a call with Ines at Borealis, they want the pilot in January",
     [("log_activity", {"type": "call", "subject": "Call with Ines Duarte", "body": "they want the pilot in January",
                        "contact_ids": ["$ines"], "company_ids": ["$borealis"], "deal_ids": ["$deal"]})]),
    ("had a meeting with Marco and Ines about pricing",  # Ines settled by Marco's company
     [("log_activity", {"type": "meeting", "subject": "Meeting with Marco Bellini and Ines Duarte about pricing",
                        "contact_ids": ["$marco", "$ines"], "deal_ids": ["$deal"]})]),
    ("call w/ Ines + Marco at Borealis, " + STORY_BODY,  # STORIES.md, 10:40
     [("log_activity", {"type": "call", "subject": "Call with Ines Duarte and Marco Bellini", "body": STORY_BODY,
                        "contact_ids": ["$ines", "$marco"], "company_ids": ["$borealis"], "deal_ids": ["$deal"]}),
      ("update_deal", {"deal_id": "$deal", "amount": "62000", "next_step": "Send revised quote"}),
      ("create_task", {"title": "Send revised quote", "due_date": "2026-11-26", "company_id": "$borealis",
                       "deal_id": "$deal"})]),
    ("called Marco yesterday about the renewal",
     [("log_activity", {"type": "call", "subject": "Call with Marco Bellini about the renewal",
                        "occurred_at": "2026-11-22T08:50:00+00:00", "contact_ids": ["$marco"],
                        "deal_ids": ["$deal"]})]),
    ("called marco yday about the renewal",  # the reps' shorthand
     [("log_activity", {"type": "call", "subject": "Call with Marco Bellini about the renewal",
                        "occurred_at": "2026-11-22T08:50:00+00:00", "contact_ids": ["$marco"],
                        "deal_ids": ["$deal"]})]),
    ("met with Ines Duarte - walked through the security review",
     [("log_activity", {"type": "meeting", "subject": "Meeting with Ines Duarte",
                        "body": "walked through the security review", "contact_ids": ["$ines"],
                        "deal_ids": ["$deal"]})]),
    ("logged a meeting with BOREALIS, kickoff went well",
     [("log_activity", {"type": "meeting", "subject": "Meeting with Borealis Logistics", "body": "kickoff went well",
                        "company_ids": ["$borealis"], "deal_ids": ["$deal"]})]),
    ("log a call with Atlas and Orion Freight, intro call",
     [("log_activity", {"type": "call", "subject": "Call with Atlas and Orion Freight", "body": "intro call",
                        "company_ids": ["$atlas"]})]),
    ("note on Borealis: CFO is skeptical", [("add_note", {"body": "CFO is skeptical", "company_id": "$borealis"})]),
    ("log a note on Ines Duarte: prefers email over calls",
     [("add_note", {"body": "prefers email over calls", "contact_id": "$ines"})]),
    ("add a note to the Borealis deal: legal review takes 3 weeks",
     [("add_note", {"body": "legal review takes 3 weeks", "deal_id": "$deal"})]),
    ("note: Marco is leaving in March", [("add_note", {"body": "Marco is leaving in March", "contact_id": "$marco"})]),
    ("note on Ines and Marco: both prefer Teams",  # several people: only log_activity links them all
     [("log_activity", {"type": "note", "subject": "Note on Ines Duarte and Marco Bellini", "body": "both prefer Teams",
                        "contact_ids": ["$ines", "$marco"]})]),
    ("log call w/ marco, budget approved, 48,000 -> 55,500",
     [("log_activity", {"type": "call", "subject": "Call with Marco Bellini",
                        "body": "budget approved, 48,000 -> 55,500", "contact_ids": ["$marco"], "deal_ids": ["$deal"]}),
      ("update_deal", {"deal_id": "$deal", "amount": "55500"})]),
    # 2. move a deal
    ("Borealis is in negotiation now", [("update_deal", {"deal_id": "$deal", "stage": "Negotiation"})]),
    ("push the Nordlys deal out to end of Q1",
     [("update_deal", {"deal_id": "$nordlys_deal", "close_date": "2027-03-31"})]),
    ("move Borealis to negotiation", [("update_deal", {"deal_id": "$deal", "stage": "Negotiation"})]),
    ("move the Borelis deal to negotiating", [("update_deal", {"deal_id": "$deal", "stage": "Negotiation"})]),
    ("move Nordlys to proposal", [("update_deal", {"deal_id": "$nordlys_deal", "stage": "Proposal"})]),
    ("Borealis deal is now 62k", [("update_deal", {"deal_id": "$deal", "amount": "62000"})]),
    ("Borealis is now 48,000", [("update_deal", {"deal_id": "$deal", "amount": "48000"})]),
    ("update Borealis amount to $75,000",
     [("update_deal", {"deal_id": "$deal", "amount": "75000", "currency": "USD"})]),
    ("Nordlys is now 62 000 EUR",
     [("update_deal", {"deal_id": "$nordlys_deal", "amount": "62000", "currency": "EUR"})]),
    ("change the Nordlys amount to 1.2m", [("update_deal", {"deal_id": "$nordlys_deal", "amount": "1200000"})]),
    ("set the Borealis close date to end of next month",
     [("update_deal", {"deal_id": "$deal", "close_date": "2026-12-31"})]),
    ("push Nordlys close to Jan 31", [("update_deal", {"deal_id": "$nordlys_deal", "close_date": "2027-01-31"})]),
    ("Borealis close date end of quarter", [("update_deal", {"deal_id": "$deal", "close_date": "2026-12-31"})]),
    ("slip Borealis to Jan 15", [("update_deal", {"deal_id": "$deal", "close_date": "2027-01-15"})]),
    ("next step for Borealis: send security questionnaire",
     [("update_deal", {"deal_id": "$deal", "next_step": "send security questionnaire"})]),
    ("Nordlys next step: intro to their CTO",
     [("update_deal", {"deal_id": "$nordlys_deal", "next_step": "intro to their CTO"})]),
    # 3. won / lost
    ("close Borealis as won", [("update_deal", {"deal_id": "$deal", "stage": "Closed Won"})]),
    ("we won Borealis!", [("update_deal", {"deal_id": "$deal", "stage": "Closed Won"})]),
    ("mark Nordlys as lost - went with a competitor",
     [("update_deal", {"deal_id": "$nordlys_deal", "stage": "Closed Lost", "lost_reason": "went with a competitor"})]),
    ("lost Nordlys to a competitor",
     [("update_deal", {"deal_id": "$nordlys_deal", "stage": "Closed Lost", "lost_reason": "lost to a competitor"})]),
    ("Nordlys deal was lost because budget was cut",
     [("update_deal", {"deal_id": "$nordlys_deal", "stage": "Closed Lost", "lost_reason": "budget was cut"})]),
    # 4. tasks
    ("remind me to ping Ines Duarte next Tuesday",
     [("create_task", {"title": "Ping Ines Duarte", "due_date": "2026-12-01", "contact_id": "$ines",
                       "deal_id": "$deal"})]),
    ("task: send revised quote to Borealis by thursday",
     [("create_task", {"title": "Send revised quote to Borealis", "due_date": "2026-11-26",
                       "company_id": "$borealis", "deal_id": "$deal"})]),
    ("follow up with Marco in 2 weeks",
     [("create_task", {"title": "Follow up with Marco", "due_date": "2026-12-07", "contact_id": "$marco",
                       "deal_id": "$deal"})]),
    ("remind me tomorrow to call Marco",
     [("create_task", {"title": "Call Marco", "due_date": "2026-11-24", "contact_id": "$marco",
                       "deal_id": "$deal"})]),
    ("todo: prepare the Nordlys renewal deck end of next month",
     [("create_task", {"title": "Prepare the Nordlys renewal deck", "due_date": "2026-12-31",
                       "company_id": "$nordlys", "deal_id": "$nordlys_deal"})]),
    ("remind me to send the contract to Nordlys asap on friday",
     [("create_task", {"title": "Send the contract to Nordlys", "due_date": "2026-11-27", "priority": "high",
                       "company_id": "$nordlys", "deal_id": "$nordlys_deal"})]),
    ("remind me to send the contract to Nordlys on friday, high prio",
     [("create_task", {"title": "Send the contract to Nordlys", "due_date": "2026-11-27", "priority": "high",
                       "company_id": "$nordlys", "deal_id": "$nordlys_deal"})]),
    ("call Marco tomorrow",
     [("create_task", {"title": "Call Marco", "due_date": "2026-11-24", "contact_id": "$marco",
                       "deal_id": "$deal"})]),
    ("set up a meeting with Marco next week",  # a date but no "close": a task, not a deal change
     [("create_task", {"title": "Set up a meeting with Marco", "due_date": "2026-11-30", "contact_id": "$marco",
                       "deal_id": "$deal"})]),
    ("meeting with Nordlys tomorrow",  # a meeting to come is a task, not something to log
     [("create_task", {"title": "Meeting with Nordlys", "due_date": "2026-11-24", "company_id": "$nordlys",
                       "deal_id": "$nordlys_deal"})]),
    ("I'll send the deck to Marco by friday",
     [("create_task", {"title": "Send the deck to Marco", "due_date": "2026-11-27", "contact_id": "$marco",
                       "deal_id": "$deal"})]),
    # 5. add a contact
    ("add contact Sofia Reyes, CISO at Borealis, sofia.reyes@borealis-logistics.example, +1 415 555 0199",
     [("create_contact", {"first_name": "Sofia", "last_name": "Reyes", "title": "CISO",
                          "email": "sofia.reyes@borealis-logistics.example", "phone": "+1 415 555 0199",
                          "company_id": "$borealis"})]),
    ("new contact: Tomas Berg (VP Engineering, Nordlys) tomas.berg@nordlys-energy.example",
     [("create_contact", {"first_name": "Tomas", "last_name": "Berg", "title": "VP Engineering",
                          "email": "tomas.berg@nordlys-energy.example", "company_id": "$nordlys"})]),
    ("new contact at borealis: Lena Novak, CFO, +351 21 555 0142",
     [("create_contact", {"first_name": "Lena", "last_name": "Novak", "title": "CFO", "phone": "+351 21 555 0142",
                          "company_id": "$borealis"})]),
    ("add Lena Novak from Borealis as a contact",
     [("create_contact", {"first_name": "Lena", "last_name": "Novak", "company_id": "$borealis"})]),
    ("add contact Paul Smit, paul.smit@nordlys-energy.example",  # the company from the email's domain
     [("create_contact", {"first_name": "Paul", "last_name": "Smit", "email": "paul.smit@nordlys-energy.example",
                          "company_id": "$nordlys"})]),
    # 6. look up
    ("who is Ines Duarte?", [("get_record", {"kind": "contact", "id": "$ines"})]),
    ("who is ines duartee", [("get_record", {"kind": "contact", "id": "$ines"})]),
    ("find Borealis", [("find_records", {"query": "Borealis"})]),
    ("look up Marco", [("find_records", {"query": "Marco"})]),
    ("show me the Borealis deal", [("get_record", {"kind": "deal", "id": "$deal"})]),
    ("tell me about BOREALIS", [("get_record", {"kind": "company", "id": "$borealis"})]),
    ("show me Borelis", [("get_record", {"kind": "company", "id": "$borealis"})]),
    ("find contacts at Borealis", [("find_records", {"query": "Borealis", "kind": "contact"})]),
    # 7. my tasks
    ("what do I have due today?", [("list_my_tasks", {"status": "open", "due_within_days": 1})]),
    ("what's due in 3 days", [("list_my_tasks", {"status": "open", "due_within_days": 3})]),
    ("what are my tasks?", [("list_my_tasks", {"status": "open"})]),
    ("what's due this week?", [("list_my_tasks", {"status": "open", "due_within_days": 7})]),
    ("any overdue tasks?", [("list_my_tasks", {"status": "open", "due_within_days": 0})]),
    ("show my completed tasks", [("list_my_tasks", {"status": "done"})]),
    # 8. pipeline and forecast
    ("show my pipeline", [("pipeline_summary", {"scope": "mine"})]),
    ("team pipeline", [("pipeline_summary", {"scope": "team"})]),
    ("pipeline for everyone", [("pipeline_summary", {"scope": "all"})]),
    ("what's our Q4 commit?", [("forecast_summary", {"period": "this_quarter", "scope": "team"})]),
    ("forecast this quarter", [("forecast_summary", {"period": "this_quarter"})]),
    ("what's my forecast for next month", [("forecast_summary", {"period": "next_month", "scope": "mine"})]),
    ("Q1 forecast for the team", [("forecast_summary", {"period": "next_quarter", "scope": "team"})]),
    # 8. a named colleague ("Dana's"), and learned win probability
    ("what's Raj's forecast this quarter?", [("forecast_summary", {"period": "this_quarter", "rep": "Raj Patel"})]),
    ("pipeline for Priya", [("pipeline_summary", {"rep": "Priya Raman"})]),
    ("why did Dana's forecast drop?", [("forecast_changes", {"period": "this_quarter", "rep": "Dana Manager"})]),
    ("win rate by source this year for Raj",
     [("pipeline_analytics", {"metric": "win_rate", "period": "this_year", "rep": "Raj Patel", "by": "source"})]),
    ("what's the win probability of Borealis?", [("win_probability", {"deal_id": "$deal"})]),
    ("chances of winning the Nordlys deal", [("win_probability", {"deal_id": "$nordlys_deal"})]),
    ("which of my deals are at risk?", [("win_probability", {"scope": "mine"})]),
    ("win odds for Raj's deals", [("win_probability", {"rep": "Raj Patel"})]),
    # names in any case, in a chart too ("chart Lena's pipeline" once charted the rep's own)
    ("what's eve's pipeline?", [("pipeline_summary", {"rep": "Eve East"})]),
    ("chart Raj's pipeline by stage", [("chart", {"what": "pipeline_by_stage", "rep": "Raj Patel"})]),
    ("how is eve east doing against quota?", [("forecast_summary", {"period": "this_quarter", "rep": "Eve East"})]),
    ("how's raj tracking for q4?", [("forecast_summary", {"period": "this_quarter", "rep": "Raj Patel"})]),
    ("send the tracking link to Marco tomorrow",
     [("create_task", {"title": "Send the tracking link to Marco", "due_date": "2026-11-24",
                       "contact_id": "$marco", "deal_id": "$deal"})]),
    # 9. brief me
    ("brief me for my 10:00 with Borealis", [("brief", {"kind": "company", "id": "$borealis"})]),
    ("brief me on the Borealis deal", [("brief", {"kind": "deal", "id": "$deal"})]),
    ("prep me for tomorrow's call with Ines Duarte", [("brief", {"kind": "company", "id": "$borealis"})]),
    ("brief me on Marco", [("brief", {"kind": "company", "id": "$borealis"})]),  # a person: their company
    # 10. draft a follow-up
    ("draft a thank-you note to Marco for the dinner",
     [("draft_email", {"contact_id": "$marco", "purpose": "say thank you for the dinner", "deal_id": "$deal"})]),
    ("draft a follow-up to Ines Duarte about the demo",
     [("draft_email", {"contact_id": "$ines", "purpose": "follow up on the demo", "deal_id": "$deal"})]),
    ("write an email to Marco re pricing",
     [("draft_email", {"contact_id": "$marco", "purpose": "follow up on pricing", "deal_id": "$deal"})]),
    # 11. complete a task
    ("done with the revised quote task", [("complete_task", {"task_id": "$task"})]),
    ("mark 'send revised quote' done", [("complete_task", {"task_id": "$task"})]),
    ("mark the QBR deck task as done", [("complete_task", {"task_id": "$task2"})]),
]


@pytest.mark.parametrize(("text", "expected"), PHRASINGS, ids=[t for t, _ in PHRASINGS])
def test_core_command_phrasings(crm: Crm, text: str, expected: list[tuple[str, dict[str, Any]]]) -> None:
    assert crm.calls(text) == crm.expand(expected)


def test_enough_distinct_phrasings() -> None:
    assert len({t for t, _ in PHRASINGS}) >= 40


def test_unknown_names_are_said_not_guessed(crm: Crm) -> None:
    for text, name in [("log a call with Zoltan at Borealis, intro call", "Zoltan"),
                       ("brief me on Acme Rockets", "Acme Rockets"),
                       ("move Quasar Labs to negotiation", "Quasar Labs"),
                       ("who is Zed Zimmerman?", "Zed Zimmerman")]:
        reply = crm.ask(text)
        assert not reply.tool_calls
        assert f'couldn\'t find "{name}"' in reply.content


@pytest.mark.parametrize("text", ["remind me to ping Ines next Tuesday", "who is Ines?",
                                  "draft a follow-up to Ines about the demo"])
def test_an_ambiguous_name_gets_a_question_listing_both(crm: Crm, text: str) -> None:
    reply = crm.ask(text)
    assert not reply.tool_calls
    assert reply.content.startswith('Which "Ines" do you mean')
    assert "Ines Duarte (Head of Operations, Borealis Logistics)" in reply.content
    assert "Ines Carvalho (Procurement, Nordlys Energy)" in reply.content


@pytest.mark.parametrize(("text", "typed"), [("brief me on Eastwind", "Eastwind"), ("find Eastw", "Eastw"),
                                             ("log a call with Olga Petrova, intro", "Olga Petrova"),
                                             ("move Eastwind Freight to negotiation", "Eastwind Freight")])
def test_another_teams_records_cannot_be_reached(crm: Crm, text: str, typed: str) -> None:
    reply = crm.ask(text)
    assert not reply.tool_calls
    assert f'couldn\'t find "{typed}"' in reply.content
    leaked = {"Eastwind Freight", "Olga Petrova", "eastwind-freight.example"} - {typed}
    assert not any(word in reply.content for word in leaked)


@pytest.mark.parametrize("text", ["asdf qwer zxcv", "why is Borealis in negotiation?",
                                  "what's the weather in Lisbon?", ""])
def test_open_questions_and_gibberish_get_the_plain_cant(crm: Crm, text: str) -> None:
    reply = crm.ask(text)
    assert not reply.tool_calls
    assert reply.content == HELP
    assert "CRM_LLM_MODEL" in reply.content and "CRM_LLM_BASE_URL" in reply.content


@pytest.mark.parametrize(("text", "answer"), [
    ("forecast Q2", "I can forecast this month, next month, this quarter or next quarter only"),
    ("move Borealis to limbo", 'Borealis – Fleet Telematics has no stage "limbo"; its stages are Qualification, '
                               "Discovery, Demo, Proposal, Negotiation, Closed Won, Closed Lost."),
    ("draft an email to Borealis about next steps",
     "Who at Borealis Logistics should I write to: Marco Bellini (CFO) or Ines Duarte (Head of Operations)?"),
    ("add contact Ines Duarte, ines.duarte@borealis-logistics.example",
     "Ines Duarte is already in the CRM with ines.duarte@borealis-logistics.example."),
    ("add contact Sofia Reyes, CISO at Acme Rockets", 'I couldn\'t find "Acme Rockets" in the CRM'),
    ("mark 'call the pope' done", 'I couldn\'t find an open task like "call the pope"'),
])
def test_what_it_cannot_do_it_says(crm: Crm, text: str, answer: str) -> None:
    reply = crm.ask(text)
    assert not reply.tool_calls
    assert answer in reply.content


def test_two_matching_tasks_get_a_question(crm: Crm, session) -> None:  # type: ignore[no-untyped-def]
    f.create(session, crm.ctx.actor, "task", title="Send revised quote to Nordlys")
    reply = crm.ask("done with the revised quote task")
    assert not reply.tool_calls
    assert reply.content.startswith("Which task do you mean:")
    assert '"Send revised quote to Borealis" (due Thu 2026-11-26)' in reply.content
    assert '"Send revised quote to Nordlys"' in reply.content


def test_final_answer_after_tool_results_repeats_them_and_calls_nothing(crm: Crm) -> None:
    model = OfflineModel()
    asked = crm.ask("call w/ Ines + Marco at Borealis, " + STORY_BODY)
    ids = [c["id"] for c in asked.tool_calls]
    results = [ToolMessage("Done: logged call 'Call with Ines Duarte and Marco Bellini'.", tool_call_id=ids[0]),
               ToolMessage("Done: updated deal Borealis – Fleet Telematics.", tool_call_id=ids[1]),
               ToolMessage("Rejected by Priya Raman: Create task 'Send revised quote'. Reason: due Wednesday. "
                           "Nothing was changed.", tool_call_id=ids[2])]
    final = model.respond([HumanMessage("call w/ ..."), asked, *results], crm.ctx)
    assert not final.tool_calls
    assert final.content == "\n\n".join(str(r.content) for r in results)

    read = ToolMessage("Your open tasks:\n- Send revised quote to Borealis (due Thu 2026-11-26)", tool_call_id="call_x")
    answer = model.respond([HumanMessage("what are my tasks?"), AIMessage("", tool_calls=[
        {"name": "list_my_tasks", "args": {}, "id": "call_x", "type": "tool_call"}]), read], crm.ctx)
    assert answer.content == read.content and not answer.tool_calls


def test_call_ids_are_stable_and_distinct(crm: Crm) -> None:
    text = "call w/ Ines + Marco at Borealis, " + STORY_BODY
    first, again = crm.ask(text), crm.ask(text)
    ids = [c["id"] for c in first.tool_calls]
    assert ids == [c["id"] for c in again.tool_calls]
    assert len(set(ids)) == 3
