"""A decision as a DICOM Structured Report (highdicom, TID 1500 with qualitative evaluations).

The report names the algorithm (GSCo hub, its version, the arbiter) and, per specialist, a
measurement group whose algorithm identification carries the model's name and version and whose
parameters are its bundle digest, site fingerprint and approval record. It references the source
image when the upload was DICOM (patient and study then come from that image, as an SR filed
next to it must); for PNG / JPEG uploads an anonymous placeholder stands in. The series
description marks the object as AI generated.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from gsco_runtime.decision import AI_LABEL

SCHEME = "99GSCO"
FINDING = hd.sr.CodedConcept("finding", SCHEME, "Finding")
MANUFACTURER = "GSCo"
ALGORITHM = "GSCo hub"
# highdicom warns about a person name without a caret (PatientName, ReferringPhysicianName of
# the source image) and quotes the name: on the hub's stderr, its log, that is patient data.
PERSON_NAME_WARNING = r'(?s)The string ".*" is unlikely to represent the intended person name'
# highdicom logs at INFO which source it copies patient and study from, by its SOPInstanceUID (an
# identifier, DICOM PS3.15); its logger otherwise follows the root's level, which a library may
# lower (fhircraft's import calls logging.basicConfig(level=INFO)). Its warnings still come through.
logging.getLogger("highdicom").setLevel(logging.WARNING)
# catch_warnings swaps the process-wide filter list: two SRs built at once would restore each
# other's list and let the warning through.
_FILTERS = threading.Lock()


def hub_version() -> str:
    try:
        return version("gsco")
    except PackageNotFoundError:
        return "0+unknown"


def _label_code(label: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(label[:16], SCHEME, label)


def _placeholder_source() -> Dataset:
    """An anonymous stand-in image for non-DICOM uploads (no patient data, fresh UIDs)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = hd.UID()
    ds.StudyInstanceUID = hd.UID()
    ds.SeriesInstanceUID = hd.UID()
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.Modality = "OT"
    return ds


def _group(
    name: str, version_: str, parameters: list[str], label: str, source: Dataset | None
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=name[:64]),
        algorithm_id=hd.sr.AlgorithmIdentification(name=name, version=version_, parameters=parameters),
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)] if source else None,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(FINDING, _label_code(label))],
    )


def build_sr(decision: dict[str, Any], source: Dataset | None) -> bytes:
    """The SR of ``decision`` (the API's decision JSON) as DICOM Part 10 bytes.

    Only highdicom's person-name warning is silenced, while the SR is built (a filter installed at
    import would not hold: pytest, for one, resets the filters for every test).
    """
    with _FILTERS, warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=PERSON_NAME_WARNING, category=UserWarning, module="highdicom"
        )
        return _build_sr(decision, source)


def _build_sr(decision: dict[str, Any], source: Dataset | None) -> bytes:
    evidence = source if source is not None else _placeholder_source()
    referenced = source if source is not None else None
    groups = [
        _group(
            ALGORITHM,
            hub_version(),
            [f"arbiter={decision['arbiter']}", f"confidence={decision['confidence']:.6f}", AI_LABEL],
            decision["label"],
            referenced,
        )
    ]
    for model in decision["specialists"]:
        groups.append(
            _group(
                model["model_name"],
                model["version"],
                [
                    f"digest={model['digest']}",
                    f"site_fingerprint={model['site_fingerprint']}",
                    f"approved_by={model['approved_by']}",
                    f"approved_at={model['approved_at']}",
                ],
                model["label"],
                referenced,
            )
        )
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name=ALGORITHM, manufacturer_name=MANUFACTURER, model_name=hub_version()
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=hd.sr.CodedConcept("gsco-diagnosis", SCHEME, "AI decision support"),
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[evidence],
        content=report,
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        series_description=AI_LABEL,
        content_date=datetime.now().date(),
    )
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
