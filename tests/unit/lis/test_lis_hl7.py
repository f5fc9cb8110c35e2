"""HL7 v2 both ways: ORU^R01 to WHOOP's report (escapes, repetitions, units, value types,
statuses, malformed messages), an order as ORM^O01, and answers as ACK."""

import hl7 as hl7_package
import pytest

from whoop_bridge.lis import hl7
from whoop_bridge.lis.codes import CodeMap, LabCode
from whoop_bridge.lis.problems import Problem, Unreadable
from whoop_bridge.models.lab_results import DiagnosticReport

SR = "6f1c2f44-1d1a-4d6f-9a57-1a2b3c4d5e6f"
MSH = "MSH|^~\\&|LIS|ACME LAB|WHOOP_BRIDGE|WHOOP|20261201120000||ORU^R01^ORU_R01|CTRL-1|P|2.5.1"


def obx(n, kind, code, value, unit="", status="F"):
    return f"OBX|{n}|{kind}|{code}||{value}|{unit}|||||{status}"


def obr(status="F", placer=SR):
    return f"OBR|1|{placer}^ACME|F-9|LIPID^Lipid panel^L" + "|" * 21 + status


def message(*segments, header=MSH, sep="\r"):
    return sep.join([header, "PID|1||P-1", *segments])


def mapped(text, expected=None, codes=None):
    return hl7.report_in(hl7.parse(text), codes or CodeMap(), expected)


def problems_of(text, expected=None):
    with pytest.raises(Unreadable) as raised:
        mapped(text, expected)
    return raised.value


def test_numbers_with_units():
    service_request_id, whoop, places = mapped(
        message(
            obr(),
            obx(1, "NM", "2093-3^Cholesterol^LN", "185.5", "mg/dL^milligram per deciliter^UCUM"),
            obx(2, "NM", "HB", "-.5"),
        )
    )
    assert service_request_id == SR
    assert whoop == {
        "status": "final",
        "observations": [
            {"code": "2093-3", "value_numeric": 185.5, "unit": "mg/dL", "status": "final"},
            {"code": "HB", "value_numeric": -0.5, "status": "final"},
        ],
    }
    DiagnosticReport.model_validate(whoop)
    assert places["body.observations.1.value_numeric"] == "OBX^2^5"


@pytest.mark.parametrize(
    "escaped, plain",
    [
        ("a\\F\\b", "a|b"),
        ("a\\S\\b", "a^b"),
        ("a\\T\\b", "a&b"),
        ("a\\R\\b", "a~b"),
        ("a\\E\\b", "a\\b"),
        ("\\F\\\\S\\\\T\\\\R\\\\E\\", "|^&~\\"),
    ],
)
def test_escape_sequences_are_undone(escaped, plain):
    _, whoop, _ = mapped(message(obr(), obx(1, "ST", "NOTE", escaped)))
    assert whoop["observations"][0]["value_text"] == plain


def test_repetitions_of_a_text_are_its_lines():
    _, whoop, _ = mapped(message(obr(), obx(1, "TX", "NOTE", "first \\R\\ line~second line~third")))
    assert whoop["observations"][0]["value_text"] == "first ~ line\nsecond line\nthird"


def test_coded_values_give_their_text_else_their_identifier():
    _, whoop, _ = mapped(
        message(
            obr(),
            obx(1, "CWE", "HIV^HIV 1+2^L", "NEG^Negative^HL70078"),
            obx(2, "CE", "ABO", "A POS"),
            obx(3, "CWE", "X", "P^Pos~N^Neg"),
        )
    )
    assert [o["value_text"] for o in whoop["observations"]] == ["Negative", "A POS", "Pos\nNeg"]


def test_line_feeds_between_segments_are_taken():
    _, whoop, _ = mapped(message(obr(), obx(1, "NM", "K", "4.1", "mmol/L"), sep="\n"))
    assert whoop["observations"][0]["unit"] == "mmol/L"


@pytest.mark.parametrize("status, whoop_status", sorted(hl7.REPORT_STATUSES.items()))
def test_every_result_status_with_a_whoop_meaning(status, whoop_status):
    assert mapped(message(obr(status), obx(1, "NM", "K", "4")))[1]["status"] == whoop_status


@pytest.mark.parametrize("status", ["O", "I", "S", "Y", "Z", "", "Q"])
def test_a_result_status_without_a_whoop_meaning_is_refused(status):
    error = problems_of(message(obr(status), obx(1, "NM", "K", "4")))
    assert [(p.where, p.kind) for p in error.problems] == [("OBR^1^25", "code")]


@pytest.mark.parametrize("status, whoop_status", sorted(hl7.OBSERVATION_STATUSES.items()))
def test_every_observation_status(status, whoop_status):
    assert mapped(message(obr(), obx(1, "NM", "K", "4", status=status)))[1]["observations"][0]["status"] == whoop_status


def test_a_cancelled_report_may_have_no_results():
    assert mapped(message(obr("X")))[1] == {"status": "cancelled"}


def test_every_problem_of_a_malformed_message_at_once():
    error = problems_of(
        message(
            obr(status="Z", placer=""),
            obx(1, "NM", "K", "4.1.2"),
            obx(2, "NM", "K", "1~2"),
            obx(3, "ED", "PDF", "x"),
            obx(4, "ST", "", "text"),
            obx(5, "NM", "K", "4", status="?"),
        )
    )
    assert {(p.where, p.kind) for p in error.problems} == {
        ("OBR^1^2", "required"),
        ("OBR^1^25", "code"),
        ("OBX^1^5", "invalid"),
        ("OBX^2^5", "invalid"),
        ("OBX^3^2", "code"),
        ("OBX^4^3", "required"),
        ("OBX^5^11", "code"),
    }
    assert not error.rejected


def test_the_placer_order_number_against_the_url():
    assert problems_of(message(obr(), obx(1, "NM", "K", "4")), expected="other").problems[0].where == "OBR^1^2"


@pytest.mark.parametrize(
    "text, where",
    [
        ("PID|1||P-1", "MSH"),
        ("", "MSH"),
        (MSH.replace("ORU^R01^ORU_R01", "ORM^O01"), "MSH^1^9"),
        (MSH.replace("|2.5.1", "|3.0"), "MSH^1^12"),
    ],
)
def test_not_a_result_message_is_rejected(text, where):
    with pytest.raises(Unreadable) as raised:
        mapped(text + "\rOBR|1|x" if text.startswith("MSH") else text)
    assert raised.value.rejected and raised.value.problems[0].where == where


@pytest.mark.parametrize("segments", [(), (obr(), obr())])
def test_one_obr_per_message(segments):
    assert problems_of(message(*segments)).problems[0].where == "OBR"


def test_observation_codes_are_mapped_in():
    codes = CodeMap(observations={"LN|2093-3": "CHOL", "K": "POTASSIUM"})
    _, whoop, _ = mapped(
        message(obr(), obx(1, "NM", "2093-3^Chol^LN", "1"), obx(2, "NM", "K", "1"), obx(3, "NM", "NA", "1")),
        codes=codes,
    )
    assert [o["code"] for o in whoop["observations"]] == ["CHOL", "POTASSIUM", "NA"]
    assert codes.unmapped["in"] == 1


def segments_of(text):
    return {str(segment[0]): segment for segment in hl7_package.parse(text)}


def test_acks():
    parsed = hl7.parse(message(obr(), obx(1, "NM", "K", "4")))
    accepted = segments_of(hl7.ack(parsed, 202, {"report_id": "r"}, {}))
    assert str(accepted["MSA"]) == "MSA|AA|CTRL-1" and "ERR" not in accepted
    assert str(accepted["MSH"](9)) == "ACK^R01^ACK" and str(accepted["MSH"](5)) == "LIS"
    places = {"body.observations.0.value_text": "OBX^1^5"}
    invalid = {
        "error": "invalid_request",
        "problems": [{"field": "observations.0.value_text", "problem": "a | b"}],
    }
    text = hl7.ack(parsed, 400, invalid, places)
    assert "MSA|AE|CTRL-1" in text
    assert "ERR||OBX^1^5|102^Data type error^HL70357|E||||a \\F\\ b" in text
    err = hl7_package.parse(text).segment("ERR")
    assert str(err(8)) == "a \\F\\ b" and hl7_package.parse(text).extract_field("ERR", 1, 8, 1, 1) == "a | b"
    busy = hl7.ack(parsed, 409, {"error": "busy", "message": "retry"}, {})
    assert "MSA|AR|CTRL-1" in busy and "206^Application record locked" in busy
    forbidden = {
        "error": "transition_forbidden",
        "message": "no",
        "task_business_status": "ORDER_CONFIRMED",
        "allowed_next_statuses": [],
    }
    assert "MSA|AE|CTRL-1" in hl7.ack(parsed, 409, forbidden, {})
    unparsed = hl7.ack(None, 400, None, {}, [hl7.Problem("MSH", "not HL7", "structure")], rejected=True)
    assert "MSA|AR\r" in unparsed and "ERR||MSH|100^Segment sequence error^HL70357|E||||not HL7" in unparsed


VIEW = {
    "id": "req-1",
    "patient": {
        "id": "p-1",
        "first_name": "Ann^Marie",
        "last_name": "O|Lee",
        "birth_date": "1990-02-03",
        "gender": "female",
        "phone": "+1 555 0100",
        "email": "a@example.com",
    },
    "appointments": [{"service_request_ids": [SR], "start_time": "2026-12-02T09:30:00+00:00", "type": "IN_PERSON"}],
    "service_requests": [
        {"id": SR, "code": "WHOOP_LIPIDS", "task_description": "Lipid panel"},
        {"id": "sr-2", "code": "WHOOP_A1C"},
    ],
}


def test_an_order_as_orm_o01():
    codes = CodeMap(tests={"WHOOP_LIPIDS": LabCode("57698-3", "LN", "Lipid panel")})
    text = hl7.order_message(VIEW, codes)
    assert text.endswith("\r")
    parsed = hl7_package.parse(text)
    assert str(parsed.segment("MSH")(9)) == "ORM^O01^ORM_O01" and str(parsed.segment("MSH")(12)) == "2.5.1"
    assert parsed.extract_field("PID", 1, 3, 1, 1) == "p-1"
    assert parsed.extract_field("PID", 1, 5, 1, 1) == "O|Lee" and parsed.extract_field("PID", 1, 5, 1, 2) == "Ann^Marie"
    assert parsed.extract_field("PID", 1, 7, 1, 1) == "19900203" and parsed.extract_field("PID", 1, 8, 1, 1) == "F"
    assert parsed.extract_field("PID", 1, 13, 2, 4) == "a@example.com"
    assert [parsed.extract_field("ORC", n, 2, 1, 1) for n in (1, 2)] == [SR, "sr-2"]
    assert parsed.extract_field("ORC", 1, 4, 1, 1) == "req-1"
    assert [parsed.extract_field("OBR", n, 2, 1, 1) for n in (1, 2)] == [SR, "sr-2"]
    assert [parsed.extract_field("OBR", 1, 4, 1, c) for c in (1, 2, 3)] == ["57698-3", "Lipid panel", "LN"]
    assert parsed.extract_field("OBR", 2, 4, 1, 1) == "WHOOP_A1C"
    assert parsed.extract_field("TQ1", 1, 7, 1, 1) == "20261202093000+0000"
    assert parsed.extract_field("TQ1", 2, 7, 1, 1) == ""


# rev3: what real LIS engines send over HTTP.
@pytest.mark.parametrize(
    "wrap",
    [
        lambda text: "\x0b" + text + "\x1c\r",  # MLLP framing kept by an engine's HTTP adapter
        lambda text: "\ufeff" + text,  # a byte order mark from a Windows tool
        lambda text: " \r\n" + text + "\r\n\r\n",  # blank lines around the message
    ],
)
def test_framing_around_the_message_is_not_the_message(wrap):
    service_request_id, whoop, _ = mapped(wrap(message(obr(), obx(1, "NM", "CHOL^Chol^L", "185", "mg/dL"))))
    assert service_request_id == SR
    assert whoop["observations"] == [{"code": "CHOL", "value_numeric": 185.0, "unit": "mg/dL", "status": "final"}]


def test_an_nm_value_with_components_is_not_a_number():
    problems = problems_of(message(obr(), obx(1, "NM", "CHOL^Chol^L", "185^mg", "mg/dL"))).problems
    assert [p.where for p in problems] == ["OBX^1^5"]


def test_the_ack_is_escaped_for_its_own_encoding_characters_not_the_senders():
    # The sender uses `#` as its component separator; the ACK is written with `^~\&`.
    header = MSH.replace("|^~\\&|", "|#~\\&|").replace("ORU^R01^ORU_R01", "ORU#R01#ORU_R01")
    parsed = hl7.parse(message(obr(), header=header).replace(f"{SR}^ACME", f"{SR}#ACME"))
    text = hl7.ack(parsed, 400, None, {}, [Problem("OBX^1^5", "a^b|c")])
    ack = hl7_package.parse(text)
    assert str(ack.segment("MSA")[2]) == "CTRL-1"
    err = ack.segment("ERR")
    assert "|a\\S\\b\\F\\c" in text  # the component separator `^` escaped, as the ACK's MSH-2 says
    assert len(err[8]) == 1 and ack.unescape(str(err[8])) == "a^b|c"
    assert [ack.extract_field("ERR", 1, 2, 1, n) for n in (1, 2, 3)] == ["OBX", "1", "5"]


def test_a_message_without_a_control_id_is_rejected_naming_msh_10():
    # The ACK's MSA-2 echoes MSH-10: without it the LIS cannot match the answer to its message.
    unnamed = message(obr(), obx(1, "NM", "CHOL^Chol^L", "185", "mg/dL"), header=MSH.replace("|CTRL-1|", "||"))
    refused = problems_of(unnamed)
    assert refused.rejected and [(p.where, p.kind) for p in refused.problems] == [("MSH^1^10", "required")]
