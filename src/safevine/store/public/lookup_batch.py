"""Lookups sent together: the searches waiting for the database go a few at a time (at
most `waiting_lookups.BATCH_MAX`), each few in one write.

One search at a time on a connection, a lookup cost the web process a write and a read on
the socket, a wake-up of the loop and of the server's backend: most of a PostgreSQL
search's CPU on the web process's side (BENCHMARKS.md, search). Here the lookups waiting
when a connection comes free go to the server together in libpq's pipeline mode (each
statement prepared and run as before, one Sync at the end), and their answers are read
together: the same statements and rows, one round trip for all of them.

A Sync ends the pipeline's implicit transaction; in READ COMMITTED every statement in it
still takes its own snapshot, so each lookup sees what it would have seen alone, and a
protection committed before it began is seen by it. One lookup's error makes the server
skip the rest until the Sync: those are sent again, once, in the next batch.
"""

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import pq

from safevine.store.public.libpq_statement import LibpqStatement, PreparedOn, writable
from safevine.store.public.waiting_lookups import Rows, Waiting


@dataclass(eq=False)
class Lookup(Waiting):
    """One search's statement, waiting to be sent or answered; `answer` gets its rows or
    psycopg's error."""

    statement: LibpqStatement
    values: list[bytes | None]
    # The statement and parameters as psycopg's cursor takes them, for a connection
    # libpq's form does not suit (another encoding).
    sql: str
    parameters: Any


@dataclass
class _Sent:
    """A command sent in the pipeline, in order: a statement's preparation (no lookup)
    or a lookup's run."""

    statement: LibpqStatement
    lookup: Lookup | None


@dataclass
class Outcome:
    """What a batch found: each lookup's rows or error, to be given once the connection
    is back (so that a search that has its answer has given its connection back), and
    the lookups to send again (skipped for another's error, or whose statement the
    session had lost, as after a `DEALLOCATE ALL`); each is sent again once, the second
    time it is answered with its error."""

    answers: list[tuple[Lookup, Rows | BaseException]] = field(default_factory=list)
    resend: list[Lookup] = field(default_factory=list)

    def give(self) -> None:
        for lookup, answer in self.answers:
            if isinstance(answer, BaseException):
                lookup.settle(error=answer)
            else:
                lookup.settle(answer)


async def send_batch(
    connection: psycopg.AsyncConnection[Any], lookups: list[Lookup], prepared: PreparedOn
) -> Outcome:
    """Run `lookups` on `connection` (idle, in autocommit, used by nothing else meanwhile)
    in one pipeline, and read every answer. Raises psycopg's error if the connection
    fails: the lookups are then the caller's, none answered."""
    pgconn = connection.pgconn
    sent: list[_Sent] = []
    preparing: set[bytes] = set()
    for lookup in lookups:
        name = lookup.statement.name
        if name not in prepared.names and name not in preparing:
            preparing.add(name)
            sent.append(_Sent(lookup.statement, None))
        sent.append(_Sent(lookup.statement, lookup))
    pgconn.enter_pipeline_mode()
    for command in sent:
        if command.lookup is None:
            pgconn.send_prepare(command.statement.name, command.statement.command)
        else:
            pgconn.send_query_prepared(command.statement.name, command.lookup.values)
    pgconn.pipeline_sync()
    while pgconn.flush():
        await writable(pgconn.socket)
    answers = _Answers(pgconn, sent, prepared, connection.info.encoding)
    while not answers.synced:
        pgconn.consume_input()
        while not answers.synced and not pgconn.is_busy():
            answers.take(pgconn.get_result())
        if not answers.synced:
            await prepared.readiness.readable()
    pgconn.exit_pipeline_mode()
    return answers.outcome


class _Answers:
    """The pipeline's results, in the order the commands were sent: each command's first
    result, then None; after the last, the Sync's."""

    def __init__(
        self, pgconn: pq.abc.PGconn, sent: list[_Sent], prepared: PreparedOn, encoding: str
    ) -> None:
        self.pgconn = pgconn
        self.sent = sent
        self.prepared = prepared
        self.encoding = encoding
        self.index = 0
        self.first: pq.abc.PGresult | None = None
        self.synced = False
        self.outcome = Outcome()
        # A statement whose preparation failed: its lookups get that error.
        self.unprepared: dict[bytes, BaseException] = {}

    def take(self, result: pq.abc.PGresult | None) -> None:
        if result is None:
            if self.index < len(self.sent):
                self._settle(self.sent[self.index], self.first)
                self.index += 1
            self.first = None
        elif result.status == pq.ExecStatus.PIPELINE_SYNC:
            self.synced = True
        elif self.first is None:
            self.first = result

    def _settle(self, command: _Sent, result: pq.abc.PGresult | None) -> None:
        name = command.statement.name
        status = result.status if result is not None else None
        lookup = command.lookup
        if lookup is None:
            if status == pq.ExecStatus.COMMAND_OK:
                self.prepared.names.add(name)
            elif status != pq.ExecStatus.PIPELINE_ABORTED and result is not None:
                self.unprepared[name] = psycopg.errors.error_from_result(result, self.encoding)
            return
        answers = self.outcome.answers
        if status == pq.ExecStatus.TUPLES_OK and result is not None:
            self.prepared.transformer.set_pgresult(result)
            answers.append((lookup, self.prepared.transformer.load_rows(0, result.ntuples, tuple)))
            return
        if status == pq.ExecStatus.PIPELINE_ABORTED or result is None:
            error = self.unprepared.get(name)
            if error is None and not lookup.again:
                self._again(lookup)
            else:
                answers.append(
                    (lookup, error or psycopg.OperationalError("the lookup was skipped"))
                )
            return
        error = psycopg.errors.error_from_result(result, self.encoding)
        if isinstance(error, psycopg.OperationalError) or self.pgconn.status == pq.ConnStatus.BAD:
            # The connection's end (a terminated backend, a server shutting down) or a
            # cancelled statement: the rest of the pipeline is not read, the caller sends
            # what is not answered once more on another connection.
            raise error
        # Prepared statements gone from the session (DEALLOCATE ALL by a pooler, say):
        # prepared again, once.
        if isinstance(error, psycopg.errors.InvalidSqlStatementName) and not lookup.again:
            self.prepared.names.discard(name)
            self._again(lookup)
        else:
            answers.append((lookup, error))

    def _again(self, lookup: Lookup) -> None:
        lookup.again = True
        self.outcome.resend.append(lookup)
