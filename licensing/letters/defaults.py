"""The standard letters' default wording, as seeded by migration 0013.

Plain data, no ORM: the migration imports it (a letter added later comes with its own
migration). Admins then change the wording in the browser; every change is a new
version and the defaults here are only ever version 1.

The body is text with Jinja placeholders (`{{ premises.name }}`); a blank line starts a
new paragraph. The letter's letterhead, date, addressee block, reference, subject line
and signature block are laid out by licensing/letters/pdf.py around it.
"""

from __future__ import annotations

from typing import NamedTuple


class DefaultTemplate(NamedTuple):
    """One standard letter: its key, title, subject line and body as first seeded."""

    key: str
    title: str
    subject: str
    body: str


FIRST_WARNING = "first_warning"
MEETING_INVITATION = "meeting_invitation"
ACTION_PLAN_CONFIRMATION = "action_plan_confirmation"
MINDED_TO_REVIEW = "minded_to_review"

_OBJECTIVES = (
    "the prevention of crime and disorder, public safety, the prevention of public "
    "nuisance and the protection of children from harm"
)

DEFAULT_TEMPLATES: tuple[DefaultTemplate, ...] = (
    DefaultTemplate(
        FIRST_WARNING,
        "First warning",
        "Licensing Act 2003: first warning about {{ premises.name }}",
        "Dear {{ premises.licence_holder }} and {{ premises.dps }},\n"
        "\n"
        "I am writing to you as the holder of premises licence {{ premises.licence_number }} "
        "and as the designated premises supervisor of {{ premises.name }}, "
        "{{ premises.address }}, a licence granted by {{ premises.authority }} under the "
        "Licensing Act 2003.\n"
        "\n"
        "The police have recorded incidents at or connected with the premises which give us "
        "serious concern that the licensing objectives are not being promoted. The licensing "
        f"objectives are {_OBJECTIVES}.\n"
        "\n"
        "This letter is a formal first warning. I ask you to review how the premises is run, "
        "in particular the number and deployment of door staff, the CCTV system and how long "
        "its recordings are kept, the refusal of service to people who are drunk, Challenge "
        "25, and the dispersal of customers at closing time. Please contact me within 14 "
        "days of the date of this letter to tell me what you will do.\n"
        "\n"
        "The police will continue to monitor the premises. If our concerns are not addressed "
        "we will invite you to a meeting to agree an action plan, and the Chief Officer of "
        "Police may apply to the licensing authority for a review of the premises licence "
        "under section 51 of the Licensing Act 2003.\n"
        "\n"
        "Please quote our reference {{ premises.licence_number }} in any reply.",
    ),
    DefaultTemplate(
        MEETING_INVITATION,
        "Invitation to a meeting",
        "Invitation to a meeting about {{ premises.name }}",
        "Dear {{ premises.licence_holder }} and {{ premises.dps }},\n"
        "\n"
        "Further to our concerns about {{ premises.name }}, {{ premises.address }} (premises "
        "licence {{ premises.licence_number }}, Licensing Act 2003), I invite you to a "
        "meeting with the police licensing team and our partners.\n"
        "\n"
        "Date: {{ meeting.date }}\n"
        "Time: {{ meeting.time }}\n"
        "Place: {{ meeting.place }}\n"
        "\n"
        "At the meeting we will discuss the incidents recorded at or connected with the "
        "premises and agree with you an action plan: the steps you will take to promote the "
        f"licensing objectives ({_OBJECTIVES}), who will take each step and by when. A plan "
        "normally runs for up to 12 weeks and is then reviewed.\n"
        "\n"
        "You may bring a representative. Please confirm within 7 days that you will attend, "
        "or contact me to arrange another date. If you do not engage with this process the "
        "Chief Officer of Police may apply for a review of the premises licence under "
        "section 51 of the Licensing Act 2003.",
    ),
    DefaultTemplate(
        ACTION_PLAN_CONFIRMATION,
        "Action plan confirmation",
        "Action plan agreed for {{ premises.name }}",
        "Dear {{ premises.licence_holder }} and {{ premises.dps }},\n"
        "\n"
        "Thank you for meeting us. This letter confirms the action plan agreed on "
        "{{ action_plan.agreed_on }} for {{ premises.name }}, {{ premises.address }} (premises "
        "licence {{ premises.licence_number }}, Licensing Act 2003), to promote the licensing "
        f"objectives: {_OBJECTIVES}.\n"
        "\n"
        "You agreed to the following:\n"
        "{% for item in action_plan.items %}\n"
        "{{ loop.index }}. {{ item.description }} (by: {{ item.owner }}; complete by "
        "{{ item.due_on }})\n"
        "{% endfor %}\n"
        "\n"
        "We will review the plan on {{ action_plan.review_on }}, and officers may visit the "
        "premises before then to see how each step is going.\n"
        "\n"
        "If the plan is not kept, or incidents continue, the Chief Officer of Police may "
        "apply to the licensing authority for a review of the premises licence under "
        "section 51 of the Licensing Act 2003, and the plan and this letter will form part "
        "of the evidence.",
    ),
    DefaultTemplate(
        MINDED_TO_REVIEW,
        "\u201cMinded to review\u201d notice",
        "Notice: the police are minded to apply for a review of the licence for "
        "{{ premises.name }}",
        "Dear {{ premises.licence_holder }} and {{ premises.dps }},\n"
        "\n"
        "Premises: {{ premises.name }}, {{ premises.address }}\n"
        "Premises licence: {{ premises.licence_number }}, granted by {{ premises.authority }}\n"
        "\n"
        "Despite our earlier warning and engagement with you, the police continue to record "
        "incidents at or connected with the premises which undermine the licensing "
        f"objectives ({_OBJECTIVES}).\n"
        "\n"
        "I must therefore tell you that the Chief Officer of Police is minded to apply to "
        "the licensing authority for a review of the premises licence under section 51 of "
        "the Licensing Act 2003. On a review the licensing sub-committee may modify the "
        "conditions of the licence, exclude a licensable activity, remove the designated "
        "premises supervisor, suspend the licence for up to three months or revoke it.\n"
        "\n"
        "Before a decision is made you may tell us in writing, within 14 days of the date "
        "of this letter, anything you wish us to take into account, including the steps you "
        "have taken or will take. Please quote our reference {{ premises.licence_number }}.",
    ),
)
