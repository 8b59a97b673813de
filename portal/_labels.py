"""French labels of the history and of refusals, for the patient (docs/portal.md)."""

from __future__ import annotations

from typing import Final

_ACTIONS: Final = {
    "existence-test": "Vérification de l'existence du dossier",
    "declare-authorization": "Déclaration d'autorisation d'accès",
    "remove-own-authorization": "Retrait de sa propre autorisation",
    "list-dossiers": "Liste des dossiers du professionnel",
    "list-authorizations": "Consultation des autorisations",
    "feed": "Ajout de document",
    "replace": "Modification de document",
    "search": "Consultation de la liste des documents",
    "search-references": "Recherche de références de documents",
    "read": "Lecture d'un document",
    "mask": "Masquage d'un document aux professionnels",
    "unmask": "Démasquage d'un document",
    "make-visible": "Document rendu visible",
    "archive": "Archivage d'un document",
    "delete": "Suppression d'un document",
    "create": "Création du dossier",
    "authorize": "Autorisation d'un professionnel",
    "revoke": "Retrait d'autorisation",
    "block": "Blocage d'un professionnel",
    "unblock": "Déblocage d'un professionnel",
    "set-treating-doctor": "Choix du médecin traitant",
    "set-emergency-access": "Réglage de l'accès en urgence",
    "read-history": "Consultation de l'historique",
    "close": "Fermeture du dossier",
    "reopen": "Réouverture du dossier",
    "activate": "Activation de l'espace en ligne",
    "login": "Connexion à l'espace en ligne",
    "logout": "Déconnexion",
    "set-contacts": "Modification des coordonnées ou du mot de passe",
    "set-preferences": "Modification des choix (notifications, volontés)",
    "export": "Téléchargement d'une copie du dossier",
}
_ACTORS: Final = {
    "patient": "Vous",
    "representative": "Représentant légal",
    "treating-doctor": "Médecin traitant",
    "professional": "Professionnel de santé",
    "reinforced-indirect": "Professionnel (établissement)",
    "administrative": "Personnel administratif",
    "structure-system": "Système d'un établissement",
    "occupational": "Médecine du travail",
}
_REASONS: Final = {
    "allowed": "Autorisé",
    "allowed-emergency": "Autorisé (urgence)",
    "blocked": "Refusé : professionnel bloqué",
    "dossier-closed": "Refusé : dossier fermé",
    "not-authorized": "Refusé : professionnel non autorisé",
    "not-permitted": "Refusé",
    "document-hidden": "Refusé : document non visible",
    "emergency-opposed": "Refusé : accès en urgence refusé par le patient",
    "treating-doctor-cannot-be-blocked": "Le médecin traitant ne peut pas être bloqué : choisissez d'abord un "
                                         "autre médecin traitant.",
    "patient-class-only": "Refusé : le patient ajoute seulement ses propres documents",
    "forbidden-profession": "Refusé : cette profession n'a jamais accès au DMP",
}


def action_label(action: str) -> str:
    return _ACTIONS.get(action, action)


def actor_label(kind: str) -> str:
    return _ACTORS.get(kind, kind)


def reason_label(reason: str) -> str:
    return _REASONS.get(reason, "Refusé")
