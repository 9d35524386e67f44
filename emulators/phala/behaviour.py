"""How the emulated service behaves in time and in the cases no source settles.

Every default is the hostile choice where sources allow it: an update restarts the CVM
(running with an operation in progress, then stopping, stopped, starting, running), a
delete takes time, a busy CVM refuses changes. Timings default to fractions of a second
so the suite stays fast; `scripts/sandbox` and the benchmarks choose their own.
Where sources disagree or are silent (FIDELITY.md, "Unsettled"), each plausible behaviour
is a mode here, and the driver's tests run against every mode.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from emulators.phala.errors import StructuredPlacement


class HashTiming(enum.Enum):
    """When an update's new compose (and its hash) shows in `GET /cvms/{id}`."""

    AT_SETTLE = "at-settle"  # only once the CVM runs again (what the Terraform provider waits for)
    AT_PATCH = "at-patch"  # as soon as the PATCH is accepted, before the restart


class DeletedView(enum.Enum):
    """What `GET /cvms/{id}` answers once a delete has finished."""

    GONE = "gone"  # 404
    TOMBSTONE = "tombstone"  # 200 with status "deleted" and `deleted_at` set


class UpdateStatuses(enum.Enum):
    """The statuses an update shows (sources name both forms; none gives the order)."""

    PHASED = "phased"  # running (in progress), stopping, stopped, starting, running
    UPDATING = "updating"  # running (in progress), then "updating" until running again


class DeletingView(enum.Enum):
    """What the service shows of a CVM while its delete runs."""

    LISTED = "listed"  # still read and listed, status "deleting", its name still taken
    HIDDEN = "hidden"  # 404 and unlisted at once (the row soft-deleted), its name free


class ComposeFileForm(enum.Enum):
    """How `compose_file` comes back in the 2026-01-21 CVM detail (the SDK types it
    `str | dict`)."""

    OBJECT = "object"
    STRING = "string"  # the app-compose as JSON text


@dataclass(frozen=True)
class Timings:
    """Seconds each phase lasts."""

    boot: float = 0.3  # a new CVM: starting -> running
    update_grace: float = 0.075  # an update: still "running", in progress, before the stop
    stop: float = 0.075  # stopping
    stopped: float = 0.075  # stopped while the new image is pulled
    restart_boot: float = 0.075  # starting again -> running
    delete: float = 0.2  # deleting, before the CVM is gone

    @classmethod
    def for_update(cls, boot: float, update: float, delete: float = 0.2) -> Timings:
        """`update` seconds in all, spread evenly over the four phases of a restart."""
        quarter = update / 4
        return cls(boot, quarter, quarter, quarter, quarter, delete)

    def scaled(self, factor: float) -> Timings:
        return Timings(*(getattr(self, name) * factor for name in self.__dataclass_fields__))


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` API calls per `seconds` per API key; more answer 429 with
    `Retry-After` (whole seconds until a slot frees)."""

    requests: int
    seconds: float


@dataclass(frozen=True)
class Behaviour:
    timings: Timings = field(default_factory=Timings)
    hash_timing: HashTiming = HashTiming.AT_SETTLE
    update_statuses: UpdateStatuses = UpdateStatuses.PHASED
    deleting_view: DeletingView = DeletingView.LISTED
    deleted_view: DeletedView = DeletedView.GONE
    compose_file_form: ComposeFileForm = ComposeFileForm.OBJECT
    structured_placement: StructuredPlacement = StructuredPlacement.TOP_LEVEL
    # 409 on a PATCH or DELETE while another operation runs on the CVM.
    busy_refuses_changes: bool = True
    rate_limit: RateLimit | None = None
    allow_duplicate_names: bool = False


# The modes the driver is tested against: each unsettled behaviour in each of its forms.
# "default" is the first form of each (the hash at settle, phased statuses, a deleting CVM
# listed, a deleted one gone, compose_file an object, structured errors at the top level).
DRIVER_MODES: dict[str, Behaviour] = {
    "default": Behaviour(),
    "alternate-update": Behaviour(
        hash_timing=HashTiming.AT_PATCH,
        update_statuses=UpdateStatuses.UPDATING,
        structured_placement=StructuredPlacement.UNDER_DETAIL,
    ),
    "tombstones-string-compose": Behaviour(
        deleted_view=DeletedView.TOMBSTONE, compose_file_form=ComposeFileForm.STRING
    ),
    "deletes-hidden-at-once": Behaviour(deleting_view=DeletingView.HIDDEN),
}
