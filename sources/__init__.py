"""Agency backends behind one small interface, and the unified model they return.

Nothing here knows GraphQL. ``resolvers/`` imports only what ``__all__`` lists.
"""

from sources._abilities import (
    Aggregates,
    HoldsComplainants,
    ListsCases,
    LooksUpReferences,
    MapsReferrals,
    SignalsChanges,
    SpeaksHttp,
)
from sources._budget import ConnectionBudget, UsesConnections
from sources._deadline import (
    Deadline,
    current_caller,
    current_deadline,
    deadline_scope,
    set_caller,
    start_deadline,
)
from sources._errors import (
    SourceBadResponse,
    SourceBusy,
    SourceConfigError,
    SourceError,
    SourceQueryFailed,
    SourceTimeout,
    SourceUnavailable,
)
from sources._federation import Federation, Page
from sources._interface import AgencyInfo, Backend, Capabilities, Problem, Source, SourceHealth
from sources._model import (
    CanonicalStatus,
    CaseRecord,
    Channel,
    ComplainantRecord,
    Location,
    ReferralKind,
    ReferralRecord,
    TimelineEntry,
    Unmapped,
)
from sources._moments import moment_problem
from sources._pushdown import Pushdown, complete
from sources._query import AgencyAccess, CaseFilter, CaseOrder, Position, SortField
from sources._registry import UnknownKind, source_class
from sources._settings import (
    AgencySettings,
    Named,
    Resilience,
    SlaSettings,
    SourceSettings,
    Strict,
    Vocabulary,
    WebhookSettings,
)
from sources._stats import (
    RELATIVE_ERROR,
    TIME_DIMENSIONS,
    Bucket,
    CaseStats,
    Dimension,
    Durations,
    StatsWarning,
)
from sources._writes import KeyReused, WriteEntry

__all__ = [
    "RELATIVE_ERROR",
    "TIME_DIMENSIONS",
    "AgencyAccess",
    "AgencyInfo",
    "AgencySettings",
    "Aggregates",
    "Backend",
    "Bucket",
    "CanonicalStatus",
    "Capabilities",
    "CaseFilter",
    "CaseOrder",
    "CaseRecord",
    "CaseStats",
    "Channel",
    "ComplainantRecord",
    "ConnectionBudget",
    "Deadline",
    "Dimension",
    "Durations",
    "Federation",
    "HoldsComplainants",
    "KeyReused",
    "ListsCases",
    "Location",
    "LooksUpReferences",
    "MapsReferrals",
    "Named",
    "Page",
    "Position",
    "Problem",
    "Pushdown",
    "ReferralKind",
    "ReferralRecord",
    "Resilience",
    "SignalsChanges",
    "SlaSettings",
    "SortField",
    "Source",
    "SourceBadResponse",
    "SourceBusy",
    "SourceConfigError",
    "SourceError",
    "SourceHealth",
    "SourceQueryFailed",
    "SourceSettings",
    "SourceTimeout",
    "SourceUnavailable",
    "SpeaksHttp",
    "StatsWarning",
    "Strict",
    "TimelineEntry",
    "UnknownKind",
    "Unmapped",
    "UsesConnections",
    "Vocabulary",
    "WebhookSettings",
    "WriteEntry",
    "complete",
    "current_caller",
    "current_deadline",
    "deadline_scope",
    "moment_problem",
    "set_caller",
    "source_class",
    "start_deadline",
]
