"""PHI typed into free text (site config task texts, card notes) stops the export, naming the field.

The identifier scan is token-based: an anonymized file name such as ``000.png`` is no false alarm
inside op names or numbers. Host names are planted explicitly (not read from this machine).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest

from gsco_common.errors import PrivacyError
from registry.bundle.free_text import (
    HOST_NAME_REGEX,
    MAX_FIELD_CHARS,
    HostNames,
    free_text_fields,
    refuse_identifying_text,
)
from registry.bundle.phi import scan_strings
from site_agent.data.decode import decode_dicom
from site_agent.data.sources import path_identifiers
from specialist.export.card_builder import DEFAULT_LIMITATIONS, DEFAULT_OUT_OF_SCOPE, identifiers_to_scan
from tests.site_agent.dicom_files import write_dicom

FIELD = "card.task.intended_use"
PLANTED_HOST = "ward7-ws.example"


@pytest.mark.parametrize(
    "text",
    [
        "Triage for Meier^Anna and others",
        "Reviewed with Mrs. Keller",
        "Built on patient Anna Meier's images",
        "MRN 4471 excluded",
        "case 12345678 excluded",
        "born 1957-03-14",
        "scan of 03/14/1957",
        "questions to rad.team@hospital.org",
        "(reply:j.doe+rad@x-ray.hospital.de)",
        "exported from pacs01.radiology.lan",
        "images under /srv/pacs/export",
        r"copied from C:\data",
    ],
)
def test_identifying_free_text_is_refused_naming_only_the_field(text: str) -> None:
    with pytest.raises(PrivacyError) as refused:
        refuse_identifying_text([(FIELD, text), ("card.task.labels[0]", "pneumonia")], [], [])
    assert refused.value.message == f"card.json would contain identifying strings in: {FIELD}"
    assert text not in str(refused.value) and text not in (refused.value.hint or "")


def test_ordinary_task_texts_pass() -> None:
    refuse_identifying_text(
        [
            (FIELD, "Research decision support for adult chest X-ray triage, e.g. in emergency care."),
            ("card.task.out_of_scope[0]", "Sole basis of a diagnosis; children under 2 years."),
            ("card.task.limitations[0]", "Single-site data (2019-2021 scanners); AUC 0.91 on 624 images."),
            (
                "card.task.limitations[1]",
                "AUC 0.91 (0.88-0.94), sensitivity 0.85 (0.80-0.90) at 12.5-3.75 mm.",
            ),
            ("card.model_uid", "0" * 32),
        ],
        [],
        [],
    )


def test_planted_host_name_is_found_without_relying_on_this_machine() -> None:
    with pytest.raises(PrivacyError, match="card.task.limitations"):
        refuse_identifying_text([("card.task.limitations[0]", f"from {PLANTED_HOST}")], [PLANTED_HOST], [])


def test_anonymized_file_names_are_no_false_alarm() -> None:
    forbidden = ["000.png", "000", "001.png", "001"]
    clean = [("model.graph.initializer[0].name", "onnx::Conv_1000"), ("card.evaluation.auc", "0.9000")]
    assert scan_strings(clean, forbidden) == []
    assert scan_strings([("card.task.notes", "see 000.png")], forbidden) == ["card.task.notes"]


def test_scan_is_bounded_and_fails_closed() -> None:
    with pytest.raises(PrivacyError, match=FIELD):
        refuse_identifying_text([(FIELD, "a " * (MAX_FIELD_CHARS // 2 + 1))], [], [])


def test_only_free_text_fields_are_pattern_checked() -> None:
    named = [("card.task.labels[0]", "rad.team@hospital.org"), ("card.model_uid", "MRN 4471")]
    assert free_text_fields(named) == []
    assert free_text_fields([("card.task.notes", "MRN 4471"), ("card.task.notes", "x@y.org")]) == [
        "card.task.notes"
    ]


def test_the_scan_limit_is_exact() -> None:
    assert free_text_fields([(FIELD, "a" * MAX_FIELD_CHARS)]) == []
    assert free_text_fields([(FIELD, "a" * (MAX_FIELD_CHARS + 1))]) == [FIELD]


def test_refusal_lists_the_first_ten_fields_both_scans_found_and_the_default_hint() -> None:
    named = [(f"card.task.notes[{i}]", f"born 1957-03-{i + 10}") for i in range(11)]
    named.insert(0, ("card.site", "kept at ward7-ws"))
    with pytest.raises(PrivacyError) as refused:
        refuse_identifying_text(named, ["ward7-ws"], [])
    fields = ["card.site", *(f"card.task.notes[{i}]" for i in range(9))]
    assert refused.value.message == f"card.json would contain identifying strings in: {', '.join(fields)}"
    assert refused.value.hint == (
        "nothing was written; remove them from site.yaml (task texts) or adjust export.deny_list"
    )
    with pytest.raises(PrivacyError) as denied:
        refuse_identifying_text([("card.site", "St Elsewhere")], [], ["st elsewhere"], hint="say so")
    assert (denied.value.message, denied.value.hint) == (
        "card.json would contain identifying strings in: card.site",
        "say so",
    )


HOST_PIECES = (
    *("a", "Q7", "-", ".", "_", " ", "\u00e9", "\u212a", ".com", ".LAN", "de", ".localdomain", "x-"),
    *(".eu", "io", ".onnx", ".IO"),
)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("pacs01.radiology.lan", True),
        ("a.-b-.com", True),  # the first label starts the name; later labels may be hyphens
        ("_a.com", False),  # no word boundary before "a"
        ("_x-a.com", True),  # ... but there is one after the hyphen
        ("x..com", False),  # an empty label breaks the chain
        ("a.comx", True),  # any lowercase last label of letters ...
        ("a.COMX", False),  # ... but a capitalised one only when it is a known domain
        ("a.LAN", True),
        ("resnet18.safetensors", False),  # a file extension is no domain
        ("a.com_", False),
        ("a.com-x", True),
        ("-.-.com", False),  # no label that can start a name
        ("\u00e9a.com", False),
    ],
)
def test_host_names_are_found_as_the_regex_defines_them(text: str, found: bool) -> None:
    assert HostNames().search(text) is found
    assert (HOST_NAME_REGEX.search(text) is not None) is found


def test_host_name_finder_agrees_with_the_regex_on_random_text() -> None:
    draw = random.Random(17)
    texts = ["".join(draw.choices(HOST_PIECES, k=draw.randint(1, 10))) for _ in range(20_000)]
    disagreements = [t for t in texts if HostNames().search(t) is not (HOST_NAME_REGEX.search(t) is not None)]
    assert disagreements == []
    found = sum(HostNames().search(t) for t in texts)
    assert min(found, len(texts) - found) > 1_000  # both answers are exercised


def test_a_data_file_named_like_a_word_of_the_cards_own_texts_is_no_false_alarm() -> None:
    identifiers = path_identifiers(Path("/srv/site/data.npz"))
    kept = identifiers_to_scan(identifiers)
    assert "data" in identifiers and kept == identifiers - {"data"}
    assert identifiers_to_scan({"jdoe_cxr", "Images", "training"}) == {"jdoe_cxr"}
    defaults = [
        *((f"card.task.out_of_scope[{i}]", text) for i, text in enumerate(DEFAULT_OUT_OF_SCOPE)),
        *((f"card.task.limitations[{i}]", text) for i, text in enumerate(DEFAULT_LIMITATIONS)),
    ]
    with pytest.raises(PrivacyError, match=r"out_of_scope\[1\], card.task.limitations\[0\]"):
        refuse_identifying_text(defaults, identifiers, [])  # what stopped every export of a data.npz
    refuse_identifying_text(defaults, kept, [])
    with pytest.raises(PrivacyError, match=r"in: card.task.intended_use \(nothing was written"):
        refuse_identifying_text([(FIELD, "Built from /srv/site/data.npz")], kept, [])


def test_the_weights_origin_is_scanned_but_may_name_a_release_url_and_date() -> None:
    origin = "card.training.pretrained.origin"
    for text in (
        "file:///mnt/usb/jdoe.smith/weights",
        "copied from /mnt/usb/jdoe.smith/weights",
        "sent by j.doe@hospital.org",
        "Mrs. Keller's USB stick",
        "copied by jsmith from pacs01.radiology.klinikum.lan",
        "https://fs01.klinikum.lan/w",
        "https://example.org/~jsmith/weights",
        "Herr Müller, USB",
    ):
        assert free_text_fields([(origin, text)]) == [origin], text
    for text in (
        "https://weights.gsco.example.org/releases/2026-11-30/resnet18.safetensors",
        "GSCo central team, weights release 2026-11-30 (USB medium)",
        "timm release v0.9 from huggingface.co, checked against the published SHA-256",
    ):
        assert free_text_fields([(origin, text)]) == [], text
    assert free_text_fields([(FIELD, "weights from file:/srv/share")]) == [FIELD]  # a file URL is a path


@pytest.mark.parametrize(
    "text",
    [
        "Validated by Dr. Jane Roe.",
        "Reviewed by Prof Keller",
        "Patient: John Smith",
        "Patient name: Jürgen Müller",
        "Triage for MÜLLER^JÜRGEN",
        "born 01 Jan 1970",
        "born January 1, 1970",
        "born 1 January 1970",
        "seen 1st of March 1970",
        "geboren am 1. März 1970",
        "DOB 01JAN1970",
        "SSN 123-45-6789",
        "served from 192.168.10.20.",
        "images on smb://fileserver/radiology",
        "copied via nfs://store/export",
        "viewer at http://pacs01/viewer",
        "exported from ws7.klinikum.eu",
        "from pacs.radiology.hospital.io today",
        "served from fe80::1ff:fe23:4567:890a",
        "PACS at 2001:db8::7, port 104",
        "viewer on [2001:db8:0:0:0:0:0:7]:8080",
        "fe80::1: unreachable since May",
        "questions: +49 30 4505-1234",
        "on call +1 (555) 123-4567",
        "radiology desk (555) 123-4567",
        "radiology desk 555-123-4567",
        "Tel. 030 4505 1234",
        "Fax: 0221/478-0000",
        "Call 0049 30 4505 1234.",
        "Call +49\u00a030\u00a04505\u00a01234.",
        "Call +1.555.123.4567 today",
        "Call 1-800-555-0199 for support.",
        "Telefonnummer: 030 4505 1234",
        "Tel.-Nr. 030 4505 1234",
        "Phone no. 020 7946 0958",
        "Cell: 555 123 4567",
        "Handy: 0171 234 5678",
        "Mob. 0171 234 5678",
        "Old ifconfig: inet6 addr:fe80::20c:29ff:fe9c:1234/64 Scope:Link",
        "T 030 4505 1234 / F 030 4505 1235",
        "T: 030 4505 1234",
        "T/F 01 23 45 67 89",
        "M 0171 234 5678",
        "F (0221) 478-0000",
        "ext. 4505123",
        "ext 1234567",
        "Ext.: 450 5123",
        "extension no. 450 5123",
        "Durchwahl 450-5123",
        "App.: 45 05 123",
        "ipv6:2001:db8::7",
        "IPv6:fe80::1ff:fe23:4567:890a",
        "node_2001:db8::7",
        "addr_fe80::1ff:fe23:4567:890a",
        "2001:db8:0:0:1:0:0:1",
        "fd00:a:b:c::1",
        "peer fd:0:0:0:0:0:0:1",
        "Phone 030 4505 1234",
        "Ph: 030 4505 1234",
        "Ph. 030 4505 1234",
        "Fon: 030 4505 1234",
        "Fon 030 4505 1234",
        "T. 030 4505 1234",
        "T: 555 123 4567",
        "F 555 234 5678",
        "Herr Zzgermanmarker",
        "Frau Schmidt",
        "Patient ZZUPPERNAMEMARKER ZZUPPERSURMARKER",
        "Dr. SMITH",
        "Mr. SMITH",
        "Mrs. O'Brien",
        "Dr. van der Berg",
        "Herr Dr. med. Müller",
        "Prof. Dr. Keller",
        "Name: John Smith",
        "Patientin Anna Schmidt",
        "patient J. Smith",
        "zzmailmarker@zzpacsmarker",
        "jsmith@localhost",
        "~zztildemarker/cxr",
        "[/srv/zzbracketmarker/cxr]",
        "./data/jsmith",
        "../scans/jsmith",
        "PACS01.ZZUPPERHOSTMARKER.EU",
    ],
)
def test_names_dates_numbers_addresses_and_shares_found_by_the_red_team_are_refused(text: str) -> None:
    with pytest.raises(PrivacyError, match=re.escape(FIELD)):
        refuse_identifying_text([(FIELD, text)], [], [])


@pytest.mark.parametrize(
    "text",
    [
        "Backbone timm/vit_base_patch16_224.augreg2_in21k_ft_in1k, fine-tuned.",
        "Backbones resnet18.a1_in1k and eva02_base_patch16_clip_224.merged2b compared.",
        "Exported with version 1.2.3 from resnet18.safetensors (model.onnx, card.json).",
        "AUC, sensitivity and specificity at the Youden threshold; opset 18.",
        "Data from May 2021 to Dec 2022, e.g. adults; i.e. no children under 2 years.",
        "Patient selection excluded ICU cases; patients aged 18 to 90.",
        "Served by a node.js proxy; weights in weights.npz, logs in hub.log.",
        "Read daily at 12:30:45; classes 3:1; split 1:1:2; C++ std::vector; sha256:0123abcdef4567.",
        "AUC +0.5 points (0.2 to 0.8); accuracy +2 (95 % CI 1 to 3); sizes 28 64 128 224 px.",
        "No phone calls; the CSS ::before selector; a::b; Foo::Bar; a[::-1], x[::1]; score 3:1.",
        "AUC by acquisition: fixed 0.92 (0.90-0.94), mobile 0.87 (0.83-0.91). Mobile: 0.89 (0.85-0.93).",
        "Validated on mobile 2019-2021 bedside films; telephone triage data (2017-2019).",
        "Sensitivity +4 (2019-2021 cohort); schedule +100 / 200 / 300 steps; HU window +1000/-1000.",
        "Warm-up 100-300-1000 steps; every 10th slice (volume[::10], vol[1::10]).",
        "Input: T2-weighted MRI at 1.5 T and 3 T; T 2 weighted, T1-weighted; T 37.5 in the logs.",
        "F1 0.91 (F 1 score 0.87 in ext. validation 2019); M 3 model; sizes S 64 128, M 128 256.",
        "Limitations: AUC 0.91 (0.88-0.94) on external validation; ext. cohort 2019-2021.",
        "Extension of the 2019 model; app version 2.4.1; trained at 28 px, batch 64, 224x224.",
        "ResNet-18 (11.7M params), v1.2.3; data released 2019-2021; calibrated (T = 1.7).",
        "Epoch time 12:30:45, inference 10:30; classes 1:2:3; weights sha256:" + "ab12" * 16 + ".",
        "Uses onnx::Conv_1000 and C++ std::vector buffers; T/F ratio 2:1 in the labels.",
        "Sex F: 1203 (48.2%), M: 1294 (51.8%); Sex: F: 412 (51.3 %), M: 391 (48.7 %).",
        "Model sizes S: 64, M: 128 256; input shape M: 224 224 3; sizes M: 384/768/1024.",
        "Field strength T: 1.5 / 3.0 / 7.0; scores F: 91.2 / 88.4 / 90.1; T: 100-200 ms.",
        "Contrast phases (T: 30 60 90 s); M 05/2021 scanner upgrade; age groups F 018-030.",
        "Class ratio 1:1:1:1:1:1:1:1 across eight sites; the hub listens on ::1 only ([::1]:8000).",
        "Blood gas pH 7.35-7.45, Ph 7.4; phone 2019-2021 follow-up; T. 37.5; widths M: 384 768 1024.",
        "Reported as mAP@IoU 0.5, AUC@224 px and recall@10; input/output shapes and/or w/o TTA.",
        "Patients ICU and ED excluded; patient selection by the MRI protocol; named classes only.",
        *DEFAULT_OUT_OF_SCOPE,
        *DEFAULT_LIMITATIONS,
    ],
)
def test_technical_and_built_in_texts_stay_legal(text: str) -> None:
    assert free_text_fields([(FIELD, text)]) == []


def test_the_weights_origin_may_still_name_a_release_url_but_no_share_or_address() -> None:
    origin = "card.training.pretrained.origin"
    release = "https://weights.gsco.example.org/releases/2026-11-30/resnet18.safetensors"
    assert free_text_fields([(origin, release)]) == []
    for text in ("smb://fileserver/weights", "http://192.168.10.20/weights", "https://ws7/weights"):
        assert free_text_fields([(origin, text)]) == [origin], text


def test_a_dicom_patient_name_with_umlauts_stops_the_export_in_any_case(tmp_path: Path) -> None:
    # The export path: a DICOM header's identifiers, then the card's scan (PrivacyScan.refuse).
    pixels = np.zeros((8, 8), np.uint8)
    path = write_dicom(tmp_path / "a.dcm", pixels, patient_name="MÜLLER^JÜRGEN", charset="ISO_IR 192")
    identifiers = identifiers_to_scan(decode_dicom(path).identifiers)
    for text in (
        "Index case: Jürgen Müller",
        "index case jürgen müller",
        "Index case: Ju\u0308rgen Mu\u0308ller",
    ):
        with pytest.raises(PrivacyError, match=re.escape(FIELD)):
            refuse_identifying_text([(FIELD, text)], identifiers, [])
    refuse_identifying_text([(FIELD, "Index case excluded.")], identifiers, [])
