"""Messages for every event kind, in English and Spanish, in two wordings.

`standard` names the person, the event, the facility and the time. `discreet` names
nothing: a lock screen or a shared phone shows only that registration 482193 has an
update. Confirmation codes name nobody either way. Texts come from the gettext catalogs.
"""

import html
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any

from babel.dates import format_date, format_datetime

from safevine.domain.country import country_name
from safevine.domain.local_time import facility_zone, locale_of, long_date, short_time
from safevine.domain.sms_text import for_sms, length, room
from safevine.domain.zone_names import zone_name as local_zone_name
from safevine.i18n import N_, sms_in_gsm7, translations
from safevine.languages import direction

SUBJECT = N_("Notification update")

EVENT_TEXT = {
    "booked": N_("%(name)s was booked into %(facility)s on %(when)s."),
    "transferred": N_("%(name)s was transferred to %(facility)s on %(when)s."),
    "released": N_("%(name)s was released from %(facility)s on %(when)s (%(reason)s)."),
    "removed": N_("%(name)s was removed from the United States to %(country)s on %(when)s."),
    "escaped": N_("%(name)s escaped from %(facility)s on %(when)s."),
    "returned": N_("%(name)s was returned to custody at %(facility)s on %(when)s."),
    "died": N_("%(name)s died in custody at %(facility)s on %(when)s."),
    "hearing_scheduled": N_("A hearing for %(name)s is set at %(court)s on %(hearing)s."),
}

RELEASE_REASON = {
    "bond": N_("on bond"),
    "parole": N_("on parole"),
    "supervision": N_("under supervision"),
    "recognizance": N_("on recognizance"),
    "sentence_completed": N_("sentence completed"),
    "case_terminated": N_("case closed"),
    "relief_granted": N_("relief granted"),
    "other": N_("other reason"),
    "unknown": N_("reason not given"),
}

DISCREET = N_("There is an update for registration %(number)s. Visit %(url)s to learn more.")
DISCREET_WITH_PHONE = N_(
    "There is an update for registration %(number)s. Call %(phone)s or visit %(url)s to learn more."
)
MANAGE = N_("To see or stop these messages: %(url)s")
ACKNOWLEDGE = N_("Got this message? Tell us here: %(url)s")
CODE = N_(
    "Your confirmation code is %(code)s. It expires in 30 minutes. "
    "If you did not ask for it, ignore this message."
)
CODE_SMS = N_("Your code is %(code)s. It expires in 30 min. Reply STOP to end messages.")
VOICE_INTRO = N_("This is an automated message.")
VOICE_CODE = N_("Your confirmation code is %(code)s. Again, your code is %(code)s.")
VOICE_DISCREET = N_(
    "There is an update for registration %(number)s. Please visit the website to learn more."
)
VOICE_STOP = N_("To stop these calls, use the link in your confirmation message.")
# Feed health notices (one when a facility's feed goes down, one when it is back). They
# name nothing, whatever the wording: not the person, not the facility.
FEED_DELAY = N_(
    "Updates about registration %(number)s may be delayed: we have not received "
    "information from the facility since %(since)s. We will tell you when they resume."
)
FEED_DELAY_UNKNOWN = N_(
    "Updates about registration %(number)s may be delayed: we are not receiving "
    "information from the facility. We will tell you when they resume."
)
FEED_RESUMED = N_(
    "Updates about registration %(number)s have resumed: information from the facility "
    "is arriving again."
)
# Corrections: staff retracted an event recorded in error, and this registrant had been
# told about it. The standard wording says which message was wrong and where the person is
# now (as derived without the event); the discreet one names nothing.
CORRECTION_SUBJECT = N_("Correction to an earlier message")
CORRECTED = {
    "booked": N_(
        "The earlier message about %(name)s being booked into custody on %(day)s was wrong."
    ),
    "transferred": N_("The earlier message about %(name)s being transferred on %(day)s was wrong."),
    "released": N_("The earlier message about %(name)s being released on %(day)s was wrong."),
    "removed": N_(
        "The earlier message about %(name)s being removed from the United States on %(day)s "
        "was wrong."
    ),
    "escaped": N_("The earlier message about %(name)s escaping from custody on %(day)s was wrong."),
    "returned": N_(
        "The earlier message about %(name)s being returned to custody on %(day)s was wrong."
    ),
    "died": N_("The earlier message about %(name)s dying in custody on %(day)s was wrong."),
    "hearing_scheduled": N_(
        "The earlier message about a hearing for %(name)s on %(day)s was wrong."
    ),
}
CORRECTED_OTHER = N_("The earlier message about %(name)s on %(day)s was wrong.")
STATUS_NOW = {
    "in_custody": N_("%(name)s is in custody at %(facility)s."),
    "released": N_("%(name)s was released on %(day)s and is not in custody."),
    "removed": N_("%(name)s was removed from the United States on %(day)s."),
    "escaped": N_("%(name)s escaped from custody on %(day)s."),
    "deceased": N_("%(name)s died in custody on %(day)s."),
}
# The same words as the public search results' (web/public/results.py): one translation.
STATUS_SHORT = {
    "in_custody": N_("In custody"),
    "released": N_("Released"),
    "removed": N_("Removed from the United States"),
    "escaped": N_("Escaped from custody"),
    "deceased": N_("Died in custody"),
}
CORRECTION_SMS = N_("Correction: the %(day)s message about %(name)s was wrong. Now: %(status)s.")
CORRECTION_DISCREET = N_(
    "There is a correction for registration %(number)s. Visit %(url)s to learn more."
)
CORRECTION_DISCREET_WITH_PHONE = N_(
    "There is a correction for registration %(number)s. Call %(phone)s or visit %(url)s to "
    "learn more."
)
VOICE_CORRECTION_DISCREET = N_(
    "There is a correction for registration %(number)s. Please visit the website to learn more."
)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    sms: str
    voice: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageContext:
    language: str
    wording: str
    number: int
    manage_url: str
    help_phone: str = ""


def _when(iso: str, zone_name: str | None, language: str, short: bool) -> str:
    """The facility's local time with its zone: "November 24, 2026, 6:15 PM MST"."""
    moment = datetime.fromisoformat(iso).astimezone(facility_zone(zone_name))
    if short:
        return format_datetime(moment, "short", locale=locale_of(language))
    clock = time(moment.hour, moment.minute)
    return (
        f"{long_date(moment.date(), language)}, {short_time(clock, language)} "
        f"{local_zone_name(moment, language)}"
    )


def _facility(content: dict[str, Any], short: bool) -> str:
    name = content.get("facility_name") or "?"
    if short or not content.get("facility_city"):
        return str(name)
    return f"{name} ({content['facility_city']}, {content.get('facility_state') or ''})".replace(
        ", )", ")"
    )


def _event_text(content: dict[str, Any], name: str, language: str, short: bool) -> str:
    gettext = translations(language).gettext
    kind = content["kind"]
    details = content.get("details") or {}
    values = {
        "name": name,
        "facility": _facility(content, short),
        "when": _when(content["occurred_at"], content.get("facility_time_zone"), language, short),
        "reason": gettext(
            RELEASE_REASON.get(details.get("reason", "unknown"), RELEASE_REASON["unknown"])
        ),
        "country": country_name(details.get("destination_country", ""), language),
        "court": details.get("court", ""),
        "hearing": _when(details["hearing_at"], content.get("facility_time_zone"), language, short)
        if details.get("hearing_at")
        else "",
    }
    return gettext(EVENT_TEXT[kind]) % values


def _discreet(context: MessageContext) -> str:
    gettext = translations(context.language).gettext
    values = {"number": context.number, "url": context.manage_url, "phone": context.help_phone}
    return gettext(DISCREET_WITH_PHONE if context.help_phone else DISCREET) % values


def _sms(text: str, language: str) -> str:
    return for_sms(text, sms_in_gsm7(language))


def _fit_sms(text: str, tail: str, language: str) -> str:
    """The text and its link as one SMS: in GSM-7 within one segment (160 characters),
    in UCS-2 within two (134, about as many words): the text is shortened when it must
    be, the link (the way to stop messages) never is."""
    gsm7 = sms_in_gsm7(language)
    sms_tail, body = for_sms(tail, gsm7), for_sms(text, gsm7)
    whole = f"{body} {sms_tail}"
    space = room(whole, 1 if gsm7 else 2) - length(sms_tail) - 1
    if length(body) > space > 10:
        while body and length(body) > space - 3:
            body = body[:-1]
        body = body.rstrip() + "..."
    return f"{body} {sms_tail}"


def _html(paragraphs: list[str], url: str | None, language: str) -> str:
    """The email's HTML, in the language's direction (Arabic mail reads right to left),
    its link isolated left to right."""
    parts = [f"<p>{html.escape(p)}</p>" for p in paragraphs]
    if url:
        escaped = html.escape(url, quote=True)
        parts[-1] = parts[-1].replace(
            html.escape(url), f'<a href="{escaped}" dir="ltr">{html.escape(url)}</a>'
        )
    opening = f'<html lang="{html.escape(language)}" dir="{direction(language)}">'
    return f"<!doctype html>{opening}<body>" + "".join(parts) + "</body></html>"


def render_event(
    content: dict[str, Any],
    person_name: str,
    person_ref: str,
    context: MessageContext,
    *,
    email_only: bool = False,
) -> Rendered:
    """Every form of the message. With `email_only` the SMS and voice forms are left empty
    and never computed (the short text, its dates and the GSM-7 fitting cost a worker
    about a tenth of its time per email)."""
    gettext = translations(context.language).gettext
    subject = gettext(SUBJECT)
    manage = gettext(MANAGE) % {"url": context.manage_url}
    if context.wording == "discreet":
        text = _discreet(context)
        spoken = gettext(VOICE_DISCREET) % {"number": " ".join(str(context.number))}
        data: dict[str, Any] = {
            "type": "update",
            "registration": context.number,
            "text": text,
            "manage_url": context.manage_url,
        }
        return Rendered(
            subject,
            f"{text}\n",
            _html([text], context.manage_url, context.language),
            "" if email_only else _sms(text, context.language),
            "" if email_only else f"{gettext(VOICE_INTRO)} {spoken} {gettext(VOICE_STOP)}",
            data,
        )
    long_text = _event_text(content, person_name, context.language, short=False)
    data = {
        "type": "custody_event",
        "registration": context.number,
        "person": {"name": person_name, "reference": person_ref},
        "event": {
            k: content.get(k)
            for k in (
                "kind",
                "occurred_at",
                "facility_name",
                "facility_city",
                "facility_state",
                "details",
            )
        },
        "text": long_text,
        "manage_url": context.manage_url,
    }
    if email_only:
        sms = voice = ""
    else:
        short_text = _event_text(content, person_name, context.language, short=True)
        sms = _fit_sms(short_text, context.manage_url, context.language)
        voice = f"{gettext(VOICE_INTRO)} {long_text} {long_text} {gettext(VOICE_STOP)}"
    return Rendered(
        subject,
        f"{long_text}\n\n{manage}\n",
        _html([long_text, manage], context.manage_url, context.language),
        sms,
        voice,
        data,
    )


def with_acknowledge_link(rendered: Rendered, url: str, language: str) -> Rendered:
    """An email with a link its registrant follows to say they got it."""
    line = translations(language).gettext(ACKNOWLEDGE) % {"url": url}
    escaped = html.escape(url, quote=True)
    paragraph = (
        "<p>"
        + html.escape(line).replace(
            html.escape(url), f'<a href="{escaped}" dir="ltr">{html.escape(url)}</a>'
        )
        + "</p>"
    )
    return replace(
        rendered,
        text=f"{rendered.text}\n{line}\n",
        html=rendered.html.replace("</body>", paragraph + "</body>", 1),
    )


def render_feed_notice(
    purpose: str, content: dict[str, Any], context: MessageContext, time_zone: str | None
) -> Rendered:
    """A `delay` or `resumed` notice. The day data last arrived is given as a date in the
    registrant's own time zone (UTC if they gave none), never the facility's."""
    gettext = translations(context.language).gettext
    since = content.get("since")
    if purpose == "resumed":
        text = gettext(FEED_RESUMED) % {"number": context.number}
    elif since:
        day = datetime.fromisoformat(since).astimezone(facility_zone(time_zone)).date()
        text = gettext(FEED_DELAY) % {
            "number": context.number,
            "since": long_date(day, context.language),
        }
    else:
        text = gettext(FEED_DELAY_UNKNOWN) % {"number": context.number}
    manage = gettext(MANAGE) % {"url": context.manage_url}
    spoken = text.replace(str(context.number), " ".join(str(context.number)))
    data = {
        "type": "feed_delay" if purpose == "delay" else "feed_resumed",
        "registration": context.number,
        "since": since,
        "text": text,
        "manage_url": context.manage_url,
    }
    return Rendered(
        gettext(SUBJECT),
        f"{text}\n\n{manage}\n",
        _html([text, manage], context.manage_url, context.language),
        _fit_sms(text, context.manage_url, context.language),
        f"{gettext(VOICE_INTRO)} {spoken} {spoken} {gettext(VOICE_STOP)}",
        data,
    )


def _day(iso: str | None, zone_name: str | None, language: str, short: bool) -> str:
    """The day of a moment in the facility's local time: "November 24, 2026" (or 11/24/26)."""
    if not iso:
        return "?"
    day = datetime.fromisoformat(iso).astimezone(facility_zone(zone_name)).date()
    if short:
        return format_date(day, "short", locale=locale_of(language))
    return long_date(day, language)


def _retracted_day(retracted: dict[str, Any], language: str, short: bool) -> str:
    """The day the earlier message named: its event's (a hearing's own day)."""
    details = retracted.get("details") or {}
    moment = (
        details.get("hearing_at")
        if retracted.get("kind") == "hearing_scheduled" and details.get("hearing_at")
        else retracted.get("occurred_at")
    )
    return _day(moment, retracted.get("facility_time_zone"), language, short)


def _corrected_text(retracted: dict[str, Any], name: str, language: str) -> str:
    """Which earlier message was wrong: its event's kind and day."""
    gettext = translations(language).gettext
    day = _retracted_day(retracted, language, short=False)
    kind = str(retracted.get("kind"))
    return gettext(CORRECTED.get(kind, CORRECTED_OTHER)) % {"name": name, "day": day}


def _status_now(status: dict[str, Any] | None, name: str, language: str, short: bool) -> str:
    """Where the person is now, as derived without the retracted event; empty if unknown."""
    if not status or status.get("state") not in STATUS_NOW:
        return ""
    gettext = translations(language).gettext
    state = status["state"]
    day = _day(status.get("since"), status.get("facility_time_zone"), language, short)
    if short:
        label = gettext(STATUS_SHORT[state])
        return f"{label}, {_facility(status, short=True)}" if state == "in_custody" else label
    return gettext(STATUS_NOW[state]) % {
        "name": name,
        "facility": _facility(status, short=False),
        "day": day,
    }


def render_correction(
    content: dict[str, Any],
    person_name: str,
    person_ref: str,
    context: MessageContext,
    *,
    email_only: bool = False,
) -> Rendered:
    """A correction: the earlier message about an event staff retracted was wrong, and
    where the person is now. `content` holds the retracted event as the registrant was
    told it (`retracted`), the status the public saw when it was retracted (`status`) and
    the idempotency keys of the messages it corrects (`corrects`), never a name."""
    gettext = translations(context.language).gettext
    subject = gettext(CORRECTION_SUBJECT)
    manage = gettext(MANAGE) % {"url": context.manage_url}
    corrects = list(content.get("corrects") or [])
    if context.wording == "discreet":
        values = {"number": context.number, "url": context.manage_url, "phone": context.help_phone}
        text = (
            gettext(CORRECTION_DISCREET_WITH_PHONE if context.help_phone else CORRECTION_DISCREET)
            % values
        )
        spoken = gettext(VOICE_CORRECTION_DISCREET) % {"number": " ".join(str(context.number))}
        return Rendered(
            subject,
            f"{text}\n",
            _html([text], context.manage_url, context.language),
            "" if email_only else _sms(text, context.language),
            "" if email_only else f"{gettext(VOICE_INTRO)} {spoken} {gettext(VOICE_STOP)}",
            {
                "type": "correction",
                "registration": context.number,
                "corrects": corrects,
                "text": text,
                "manage_url": context.manage_url,
            },
        )
    retracted = dict(content.get("retracted") or {})
    status = content.get("status")
    long_text = " ".join(
        part
        for part in (
            _corrected_text(retracted, person_name, context.language),
            _status_now(status, person_name, context.language, short=False),
        )
        if part
    )
    data: dict[str, Any] = {
        "type": "correction",
        "registration": context.number,
        "person": {"name": person_name, "reference": person_ref},
        "corrects": corrects,
        "retracted_event": {
            k: retracted.get(k)
            for k in (
                "kind",
                "occurred_at",
                "facility_name",
                "facility_city",
                "facility_state",
                "details",
            )
        },
        "status": None
        if not status
        else {
            k: status.get(k)
            for k in ("state", "since", "facility_name", "facility_city", "facility_state")
        },
        "text": long_text,
        "manage_url": context.manage_url,
    }
    if email_only:
        sms = voice = ""
    else:
        day = _retracted_day(retracted, context.language, short=True)
        now = _status_now(status, person_name, context.language, short=True) or "?"
        short_text = gettext(CORRECTION_SMS) % {"day": day, "name": person_name, "status": now}
        sms = _fit_sms(short_text, context.manage_url, context.language)
        voice = f"{gettext(VOICE_INTRO)} {long_text} {long_text} {gettext(VOICE_STOP)}"
    return Rendered(
        subject,
        f"{long_text}\n\n{manage}\n",
        _html([long_text, manage], context.manage_url, context.language),
        sms,
        voice,
        data,
    )


def render_code(code: str, language: str) -> Rendered:
    gettext = translations(language).gettext
    text = gettext(CODE) % {"code": code}
    spoken = ", ".join(code)
    return Rendered(
        gettext(SUBJECT),
        f"{text}\n",
        _html([text], None, language),
        _sms(gettext(CODE_SMS) % {"code": code}, language),
        f"{gettext(VOICE_INTRO)} {gettext(VOICE_CODE) % {'code': spoken}}",
        {"type": "confirmation", "code": code, "text": text},
    )
