"""The operator's code map: pass-through without one, its document's rules, counting."""

import json

import pytest

from whoop_bridge.lis import codes


def test_no_parameter_no_map_every_code_passes_through_uncounted():
    mapping = codes.code_map(fetch=lambda name: pytest.fail("read without a parameter"), environ={})
    assert mapping.empty
    assert mapping.test_out("LIPID_PANEL") == codes.LabCode("LIPID_PANEL")
    assert mapping.observation_in("LDL", "http://loinc.org") == "LDL"
    assert mapping.unmapped == {"out": 0, "in": 0}


def test_a_map_translates_and_counts_what_it_does_not_name(capsys):
    document = {
        "tests": {
            "LIPID_PANEL": {"code": "57698-3", "system": "http://loinc.org", "display": "Lipid panel"},
            "CBC": "58410-2",
        },
        "observations": {"http://loinc.org|2093-3": "TOTAL_CHOLESTEROL", "LDL-LOCAL": "LDL"},
    }
    read = []
    mapping = codes.code_map(
        fetch=lambda name: read.append(name) or document, environ={"LIS_CODE_MAP_PARAMETER": " /bridge/codes "}
    )
    assert read == ["/bridge/codes"]
    assert mapping.test_out("LIPID_PANEL") == codes.LabCode("57698-3", "http://loinc.org", "Lipid panel")
    assert mapping.test_out("CBC") == codes.LabCode("58410-2")
    assert mapping.test_out("HBA1C") == codes.LabCode("HBA1C")
    assert mapping.observation_in("2093-3", "http://loinc.org") == "TOTAL_CHOLESTEROL"
    assert mapping.observation_in("2093-3", "LN") == "2093-3"
    assert mapping.observation_in("LDL-LOCAL", "any") == "LDL"
    assert mapping.unmapped == {"out": 1, "in": 1}
    mapping.publish_counts()
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert sorted((m["direction"], m[codes.UNMAPPED_METRIC]) for m in metrics) == [("in", [1.0]), ("out", [1.0])]
    assert "HBA1C" not in json.dumps(metrics)  # never the code itself
    assert mapping.unmapped == {"out": 0, "in": 0}


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"tests": [], "observations": {}},
        {"extra": {}},
        {"tests": {"A": {"system": "x"}}},
        {"observations": {"A": 1}},
    ],
)
def test_a_document_that_is_not_a_code_map(document):
    with pytest.raises(codes.CodeMapUnavailable):
        codes.parse(document)


def test_an_unreadable_parameter():
    def denied(name):
        raise RuntimeError("AccessDenied")

    with pytest.raises(codes.CodeMapUnavailable):
        codes.code_map(fetch=denied, environ={"LIS_CODE_MAP_PARAMETER": "/bridge/codes"})
