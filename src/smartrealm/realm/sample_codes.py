"""Code tables and names for the synthetic data set (sample_data.py): LOINC for tests and
reports, SNOMED CT for problems, DICOM modalities, and the people of the synthetic world."""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
NPI = "http://hl7.org/fhir/sid/us-npi"

GIVEN_FEMALE = ("Alice", "Beatrix", "Clara", "Dana", "Elena", "Fatima", "Grace", "Hana",
                "Ines", "Julia", "Keiko", "Lena")
GIVEN_MALE = ("Aaron", "Bram", "Carlos", "David", "Emil", "Farid", "Gabriel", "Hugo",
              "Ivan", "Jonas", "Kofi", "Liam")
FAMILY = ("Anders", "Baker", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad",
          "Ivanova", "Jansen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov")
# The default realm's demo user "patient" (Pat Example) is Patient/p0012.
FIXED_PEOPLE = {12: ("Pat", "Example", "female")}
PRACTITIONERS = (("pr0001", "Ada", "Clinician"), ("pr0002", "Ben", "Radiant"),
                 ("pr0003", "Chloe", "Labworth"), ("pr0004", "Dev", "Wardell"))


@dataclass(frozen=True)
class LabTest:
    code: str
    display: str
    unit: str
    low: float
    high: float
    decimals: int


# Codes: LOINC for tests and reports, SNOMED CT for problems and body sites, DICOM for
# modalities. key -> (LOINC, display, UCUM unit, low, high)
VITALS = {"hr": ("8867-4", "Heart rate", "/min", 55, 100),
          "wt": ("29463-7", "Body weight", "kg", 50, 110),
          "temp": ("8310-5", "Body temperature", "Cel", 36.1, 37.8)}
LAB_PANELS = (
    (("58410-2", "CBC panel - Blood by Automated count"), (
        LabTest("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12, 17.5, 1),
        LabTest("6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", 4.5, 11, 1),
        LabTest("777-3", "Platelets [#/volume] in Blood", "10*3/uL", 150, 400, 0))),
    (("51990-0", "Basic metabolic panel - Blood"), (
        LabTest("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70, 99, 0),
        LabTest("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 135, 145, 0),
        LabTest("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1,
                1),
        LabTest("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.3,
                2))),
)
CONDITIONS_CHRONIC = (("38341003", "Hypertensive disorder"),
                      ("44054006", "Diabetes mellitus type 2"),
                      ("195967001", "Asthma"), ("55822004", "Hyperlipidemia"))
CONDITIONS_ACUTE = (("10509002", "Acute bronchitis"), ("54150009", "Upper respiratory infection"),
                    ("44465007", "Sprain of ankle"),
                    ("68566005", "Urinary tract infectious disease"))
# (modality, body site, LOINC procedure, conclusion)
IMAGING_PROCEDURES = (
    (("CT", "Computed Tomography"), ("51185008", "Thoracic structure"), ("24627-2", "CT Chest"),
     "No acute cardiopulmonary abnormality."),
    (("MR", "Magnetic Resonance"), ("12738006", "Brain structure"), ("24590-2", "MR Brain"),
     "No acute intracranial abnormality."),
    (("CR", "Computed Radiography"), ("51185008", "Thoracic structure"),
     ("36643-5", "XR Chest 2 Views"), "Lungs are clear."),
    (("US", "Ultrasound"), ("818983003", "Abdomen"), ("24558-9", "US Abdomen"),
     "Normal abdominal ultrasound."),
)

# Medication orders, allergies, procedures and notes (sample_records.py).
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
DOCUMENT_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
# Condition SNOMED code -> (RxNorm SCD, display, dosage text)
MEDICATIONS = {
    "38341003": ("314076", "lisinopril 10 MG Oral Tablet", "10 mg by mouth once daily"),
    "44054006": ("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
                 "500 mg by mouth once daily with the evening meal"),
    "195967001": ("895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose "
                  "Inhaler", "2 puffs inhaled twice daily"),
    "55822004": ("259255", "atorvastatin 80 MG Oral Tablet", "80 mg by mouth once daily"),
    "10509002": ("313782", "acetaminophen 325 MG Oral Tablet",
                 "650 mg by mouth every 6 hours as needed for fever, for 5 days"),
    "54150009": ("313782", "acetaminophen 325 MG Oral Tablet",
                 "650 mg by mouth every 6 hours as needed for fever, for 5 days"),
    "44465007": ("310965", "ibuprofen 200 MG Oral Tablet",
                 "400 mg by mouth every 8 hours as needed for pain, for 7 days"),
    "68566005": ("562251", "amoxicillin 250 MG / clavulanate 125 MG Oral Tablet",
                 "1 tablet by mouth every 8 hours for 7 days"),
}
# (SNOMED CT finding, display, category, criticality, reaction (SNOMED CT))
ALLERGIES = (
    ("91936005", "Allergy to penicillin", "medication", "high",
     ("271807003", "Eruption of skin")),
    ("91935009", "Allergy to peanuts", "food", "high", ("39579001", "Anaphylaxis")),
    ("300916003", "Latex allergy", "environment", "low", ("247472004", "Wheal")),
    ("418689008", "Allergy to grass pollen", "environment", "low",
     ("21719001", "Allergic rhinitis")),
)
PROCEDURES = (("430193006", "Medication reconciliation"),
              ("710824005", "Assessment of health and social care needs"),
              ("171207006", "Depression screening"))
DOCUMENT_TYPES = (("11506-3", "Progress note"), ("34117-2", "History and physical note"),
                  ("11488-4", "Consult note"))
