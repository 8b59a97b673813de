"""A realistic CDA R2 document (a French consultation report, CI-SIS style header, structured body) of about
10 KB, different for each uniqueId: what a DMP repository mostly receives."""

from __future__ import annotations

import random
from xml.sax.saxutils import escape

_LABS = [
    ("718-7", "Hémoglobine", "g/dL", 11.5, 16.5),
    ("4544-3", "Hématocrite", "%", 35.0, 48.0),
    ("6690-2", "Leucocytes", "10*9/L", 4.0, 10.0),
    ("777-3", "Plaquettes", "10*9/L", 150.0, 400.0),
    ("2951-2", "Sodium", "mmol/L", 135.0, 145.0),
    ("2823-3", "Potassium", "mmol/L", 3.5, 5.0),
    ("2160-0", "Créatinine", "µmol/L", 45.0, 104.0),
    ("33914-3", "DFG estimé (CKD-EPI)", "mL/min/1.73m2", 60.0, 120.0),
    ("1988-5", "Protéine C réactive", "mg/L", 0.0, 5.0),
    ("4548-4", "Hémoglobine glyquée (HbA1c)", "%", 4.0, 6.0),
    ("2093-3", "Cholestérol total", "mmol/L", 3.5, 5.2),
    ("2085-9", "Cholestérol HDL", "mmol/L", 1.0, 2.0),
    ("13457-7", "Cholestérol LDL calculé", "mmol/L", 1.5, 3.4),
    ("2571-8", "Triglycérides", "mmol/L", 0.5, 1.7),
    ("1742-6", "ALAT", "UI/L", 5.0, 40.0),
    ("1920-8", "ASAT", "UI/L", 5.0, 40.0),
]
_DRUGS = [
    ("Metformine 1000 mg", "1 comprimé matin et soir au cours des repas"),
    ("Ramipril 5 mg", "1 comprimé le matin"),
    ("Atorvastatine 20 mg", "1 comprimé le soir"),
    ("Acide acétylsalicylique 75 mg", "1 sachet par jour au déjeuner"),
    ("Paracétamol 1 g", "1 comprimé si douleur, 4 par jour au maximum, 6 heures d'intervalle"),
]


def consultation_report(unique_id: str, patient_id: str, seed: int) -> bytes:
    """A CDA ClinicalDocument whose ``id/@root`` is ``unique_id``, about the patient ``patient_id`` (CX, INS-NIR);
    the seed varies the clinical values."""
    rng = random.Random(seed)
    labs = "".join(
        f"<tr><td>{escape(name)}</td><td>{rng.uniform(lo * 0.8, hi * 1.2):.1f}</td><td>{escape(unit)}</td>"
        f"<td>{lo:g} - {hi:g}</td></tr>" for _code, name, unit, lo, hi in _LABS
    )
    lab_entries = "".join(
        f"""
          <entry><observation classCode="OBS" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
            <id root="{unique_id}.{i}"/>
            <code code="{code}" codeSystem="2.16.840.1.113883.6.1" displayName="{escape(name)}"/>
            <statusCode code="completed"/>
            <effectiveTime value="20240311080000+0100"/>
            <value xsi:type="PQ" value="{rng.uniform(lo, hi):.1f}" unit="{escape(unit)}"/>
          </observation></entry>""" for i, (code, name, unit, lo, hi) in enumerate(_LABS[:8], 1)
    )
    drugs = "".join(f"<item><content>{escape(d)}</content> : {escape(p)}</item>" for d, p in _DRUGS)
    ta_sys, ta_dia, pulse = rng.randint(115, 160), rng.randint(65, 95), rng.randint(55, 95)
    weight = rng.uniform(55, 105)
    nir = patient_id.split("^", 1)[0]
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.2.8.2.1" assigningAuthorityName="HL7 France"/>
  <templateId root="1.2.250.1.213.1.1.1.1" assigningAuthorityName="CI-SIS"/>
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.1.1"/>
  <id root="{unique_id}"/>
  <code code="11488-4" codeSystem="2.16.840.1.113883.6.1" displayName="Compte rendu de consultation"/>
  <title>Compte rendu de consultation de diabétologie</title>
  <effectiveTime value="20240312093000+0100"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="fr-FR"/>
  <setId root="{unique_id}.0"/>
  <versionNumber value="1"/>
  <recordTarget><patientRole>
    <id root="1.2.250.1.213.1.4.10" extension="{nir}"/>
    <id root="1.2.250.1.999.1.1.8121.4" extension="IPP{seed:07d}"/>
    <addr><streetAddressLine>12 rue des Lilas</streetAddressLine><postalCode>75011</postalCode>
      <city>Paris</city></addr>
    <telecom value="tel:+33612345678" use="MC"/>
    <patient><name><family qualifier="BR">DUPONT</family><given>Marie</given></name>
      <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="19800101"/></patient>
  </patientRole></recordTarget>
  <author><time value="20240312093000+0100"/><assignedAuthor>
    <id root="1.2.250.1.71.4.2.1" extension="801234567897"/>
    <code code="SM54" codeSystem="1.2.250.1.71.1.2.8" displayName="Endocrinologie et métabolisme"/>
    <assignedPerson><name><prefix>Dr</prefix><given>Claire</given><family>MARTIN</family></name></assignedPerson>
    <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1750000000"/>
      <name>CH FICTIF</name></representedOrganization>
  </assignedAuthor></author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <id root="1.2.250.1.213.4.1" extension="1.2.250.1.213.4.1"/><name>DMP</name>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <documentationOf><serviceEvent>
    <code code="DEQP003" codeSystem="1.2.250.1.213.2.5" displayName="Consultation spécialisée"/>
    <effectiveTime><low value="20240312090000+0100"/><high value="20240312093000+0100"/></effectiveTime>
  </serviceEvent></documentationOf>
  <componentOf><encompassingEncounter><effectiveTime value="20240312090000+0100"/>
    <location><healthCareFacility><code code="SA01" codeSystem="1.2.250.1.71.4.2.4"
      displayName="Etablissement public de santé"/></healthCareFacility></location>
  </encompassingEncounter></componentOf>
  <component><structuredBody>
    <component><section><templateId root="1.3.6.1.4.1.19376.1.5.3.1.1.13.2.1"/>
      <code code="10154-3" codeSystem="2.16.840.1.113883.6.1" displayName="Motif de consultation"/>
      <title>Motif de consultation</title>
      <text>Suivi semestriel d'un diabète de type 2 sous metformine, découvert en 2019. Adressée par son
        médecin traitant pour déséquilibre glycémique récent et avis sur l'intensification du traitement.</text>
    </section></component>
    <component><section><title>Histoire de la maladie</title>
      <text>Depuis trois mois, la patiente rapporte une polyurie modérée et une asthénie en fin de journée,
        sans perte de poids. Les glycémies capillaires à jeun sont entre 1,40 et 1,80 g/L. Pas d'hypoglycémie
        ressentie. Observance déclarée bonne. Activité physique réduite depuis un changement de poste.</text>
    </section></component>
    <component><section><title>Antécédents</title>
      <text><list><item>Hypertension artérielle essentielle (2017)</item><item>Dyslipidémie mixte</item>
        <item>Cholécystectomie (2012)</item><item>Mère diabétique de type 2, père coronarien à 58 ans</item>
      </list></text>
    </section></component>
    <component><section><title>Traitements en cours</title><text><list>{drugs}</list></text></section></component>
    <component><section><title>Examen clinique</title>
      <text>Poids {weight:.1f} kg, taille 165 cm, IMC {weight / 1.65**2:.1f} kg/m2. Pression artérielle
        {ta_sys}/{ta_dia} mmHg aux deux bras, pouls {pulse}/min régulier. Examen des pieds : sensibilité au
        monofilament conservée, pouls pédieux perçus, pas de plaie. Pas de souffle carotidien.</text>
    </section></component>
    <component><section><templateId root="1.3.6.1.4.1.19376.1.3.3.2.1"/>
      <code code="30954-2" codeSystem="2.16.840.1.113883.6.1" displayName="Résultats d'examens"/>
      <title>Résultats biologiques du 11/03/2024</title>
      <text><table border="1"><thead><tr><th>Examen</th><th>Résultat</th><th>Unité</th>
        <th>Valeurs de référence</th></tr></thead><tbody>{labs}</tbody></table></text>{lab_entries}
    </section></component>
    <component><section><title>Conclusion et conduite à tenir</title>
      <text>Diabète de type 2 insuffisamment équilibré. Ajout d'un inhibiteur de SGLT2 après vérification de la
        fonction rénale ; éducation thérapeutique sur l'activité physique et l'alimentation. Contrôle HbA1c
        dans trois mois, bilan lipidique et microalbuminurie à six mois, fond d'oeil annuel à programmer.
        Courrier adressé au médecin traitant.</text>
    </section></component>
  </structuredBody></component>
</ClinicalDocument>
"""
    return text.encode("utf-8")
