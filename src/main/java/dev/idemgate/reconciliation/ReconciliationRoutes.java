package dev.idemgate.reconciliation;

import dev.idemgate.auth.CredentialScanner;
import dev.idemgate.config.ConfigException;
import dev.idemgate.config.GatewayConfig;
import dev.idemgate.http.ApiProblem;
import dev.idemgate.http.ErrorCode;
import dev.idemgate.http.Problems;
import dev.idemgate.http.QueryParameters;
import dev.idemgate.payment.CardNumberScanner;
import dev.idemgate.payment.PaymentRequestParser;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.WorkerExecutor;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.file.OpenOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reconciliation on the management port, behind the admin token:
 * <ul>
 *   <li>{@code POST /admin/reconciliations} — body: the settlement CSV; query: {@code provider},
 *       {@code from}, {@code to}, {@code merchant_prefix}, {@code name}, {@code settlement_lag} (this
 *       run's, in place of the setting's, as the CLI's {@code --settlement-lag}; any other, or one given twice,
 *       gets 400 before the body is read, as on every route here). A provider nothing knows
 *       gets 400 before the body is read ({@link KnownProviders}). The body is streamed to a
 *       temporary file; a file that cannot be reconciled gets 400 at once, otherwise 202 with the
 *       run id while the run goes on.</li>
 *   <li>{@code GET /admin/reconciliations} — the latest runs, each with what it found and, read when
 *       asked as in its report, how many of those are resolved and what is still open.</li>
 *   <li>{@code GET /admin/reconciliations/{id}?format=json|csv|html} — the run; once COMPLETED, its report.</li>
 *   <li>{@code POST /admin/reconciliations/{id}/discrepancies/{n}/resolve} — body {@code {"note": "…"}}, once:
 *       a discrepancy resolved already gets 409 naming when and with what note.</li>
 * </ul>
 * Runs are JDBC batch work (COPY, set-based joins), so they execute on a dedicated worker pool of
 * two threads, never on the event loop; the uploads are written with the non-blocking file system.
 * The rest (checking a file's header and recording its run, lists, reports, resolutions) has its
 * own two threads, so a long run never holds up a status poll or an upload's 202. At most two
 * uploads and runs are under way at once; more are refused with 429 before their body is read, so
 * none waits for a thread with its connection open (a client that timed out would send the file
 * again and have it reconciled twice) and the uploads on disk stay bounded.
 */
public final class ReconciliationRoutes {
  private static final Logger log = LoggerFactory.getLogger(ReconciliationRoutes.class);
  private static final int RECENT_RUNS = 50;
  /**
   * Reports being written or sent at once, each a temporary file the size of the report (37 MB of
   * JSON for a million-row settlement) in java.io.tmpdir; more are refused with 429.
   */
  static final int MAX_REPORTS_AT_ONCE = 4;
  /** Uploads and runs under way at once, one per thread of the runs' pool. */
  static final int MAX_RUNS_AT_ONCE = 2;
  /** A run id as {@link Reconciler} makes them: anything else names no run, and is not sent to PostgreSQL. */
  private static final Pattern RUN_ID = Pattern.compile("rec_[0-9a-f]{1,64}");
  /** The largest body of a resolution (a note), as for {@code /pay}. */
  private static final int MAX_RESOLVE_BODY_BYTES = 64 * 1024;

  private final Vertx vertx;
  private final String pgUrl;
  /** How long after its claim a charge may still land: a pending payment younger than that is in flight, not stuck. */
  private final Duration chargeInFlight;
  private final ReconciliationSettings settings;
  private final WorkerExecutor workers;
  private final WorkerExecutor runs;
  /** How long an upload's body may go silent before it is answered 408 ({@link SettlementUpload}). */
  private final long uploadSilenceMillis;
  /** Finds the gateway's credentials in what an operator sends (upload fields, notes), which are stored and shown. */
  private final CredentialScanner credentials;
  /** Reports being written or sent; touched on the management verticle's event loop only. */
  private int reportsInFlight;
  /** Uploads being received and runs not finished; touched on the management verticle's event loop only. */
  private int runsInFlight;

  private ReconciliationRoutes(Vertx vertx, GatewayConfig config, ReconciliationSettings settings,
      long uploadSilenceMillis, CredentialScanner credentials) {
    this.vertx = vertx;
    this.credentials = credentials;
    this.uploadSilenceMillis = uploadSilenceMillis;
    this.pgUrl = config.pgUrl();
    this.chargeInFlight = config.chargeInFlight();
    this.settings = settings;
    // Closed with the verticle that creates it (the management verticle).
    this.workers = vertx.createSharedWorkerExecutor("idemgate-reconciliation", 2, 60, TimeUnit.MINUTES);
    this.runs = vertx.createSharedWorkerExecutor("idemgate-reconciliation-runs", MAX_RUNS_AT_ONCE, 60, TimeUnit.MINUTES);
  }

  /**
   * Adds the routes; call after the {@code /admin/*} authentication handler.
   *
   * @param uploadSilenceMillis how long an upload's body may send nothing before it is answered 408
   * @param credentials the gateway's credentials, refused in an upload's fields and a resolution's note
   */
  public static void mount(Router router, Vertx vertx, GatewayConfig config, ReconciliationSettings settings,
      long uploadSilenceMillis, CredentialScanner credentials) {
    ReconciliationRoutes routes = new ReconciliationRoutes(vertx, config, settings, uploadSilenceMillis, credentials);
    // The upload checks its query itself (request), to answer with its body unread. The resolution
    // checks it on a route of its own: Vert.x Web runs a route's body handler before its other handlers.
    router.post("/admin/reconciliations").handler(routes::upload);
    router.get("/admin/reconciliations").handler(QueryParameters.none()).handler(routes::list);
    router.get("/admin/reconciliations/:id").handler(QueryParameters.only("format")).handler(routes::report);
    router.delete("/admin/reconciliations/:id").handler(QueryParameters.none()).handler(routes::delete);
    router.post("/admin/reconciliations/:id/discrepancies/:discrepancy/resolve").handler(QueryParameters.none());
    router.post("/admin/reconciliations/:id/discrepancies/:discrepancy/resolve")
        .handler(BodyHandler.create(false).setBodyLimit(MAX_RESOLVE_BODY_BYTES)).handler(routes::resolve);
  }



  /** An upload's request and the settings its run uses: the gateway's, with the upload's own settlement lag if it gave one. */
  private record Upload(ReconciliationRequest request, ReconciliationSettings settings) {}

  private record Started(String runId, Connection connection, SettlementReader reader, Upload upload) {}

  private void upload(RoutingContext ctx) {
    HttpServerRequest request = ctx.request();
    request.pause();
    Upload upload;
    try {
      upload = uploadOf(ctx);
    } catch (ConfigException e) {
      Problems.sendLeavingBodyUnread(ctx, new ApiProblem(ErrorCode.INVALID_REQUEST, e.getMessage()));
      return;
    } catch (ApiProblem problem) {
      Problems.sendLeavingBodyUnread(ctx, problem);
      return;
    }
    String length = request.getHeader("Content-Length");
    Long declaredLength = length != null && length.matches("\\d{1,18}") ? Long.parseLong(length) : null;
    if (declaredLength != null && declaredLength > settings.maxUploadBytes()) {
      Problems.sendLeavingBodyUnread(ctx, SettlementUpload.tooLarge());
      return;
    }
    if (runsInFlight >= MAX_RUNS_AT_ONCE) {
      Problems.sendLeavingBodyUnread(ctx, new ApiProblem(ErrorCode.RATE_LIMITED, MAX_RUNS_AT_ONCE
          + " reconciliations are being uploaded or run already; nothing was stored: send the file again later",
          null, 30));
      return;
    }
    runsInFlight++;
    knownProvider(upload.request()).onComplete(known -> {
      if (known.succeeded()) {
        receive(ctx, upload, declaredLength);
        return;
      }
      runsInFlight--;
      if (known.cause() instanceof ApiProblem problem) {
        Problems.sendLeavingBodyUnread(ctx, problem);
      } else {
        String reason = String.valueOf(known.cause().getMessage()).lines().findFirst().orElse("");
        log.warn("reconciliation upload refused: its provider could not be looked up in the ledger: {}", reason);
        Problems.sendLeavingBodyUnread(ctx, new ApiProblem(ErrorCode.INTERNAL_ERROR,
            "the provider could not be looked up in the ledger; nothing was stored: send the file again later"));
      }
    });
  }

  /**
   * Worker, before the body is read: a provider nothing knows would have every row of the file
   * reported as an orphan to refund ({@link KnownProviders}); it fails with 400, the body unread.
   */
  private Future<Void> knownProvider(ReconciliationRequest r) {
    if (r.provider().isEmpty()) {
      return Future.succeededFuture();
    }
    return workers.executeBlocking(() -> {
      try (Connection c = Jdbc.connect(pgUrl)) {
        Optional<String> refused = KnownProviders.refusal(c, settings, "provider", r.provider().get(), Set.of());
        if (refused.isPresent()) {
          throw new ApiProblem(ErrorCode.INVALID_REQUEST, refused.get());
        }
        return null;
      }
    }, false);
  }

  /** Streams the body to a temporary file, checks its header and records the run (202), then runs it. */
  private void receive(RoutingContext ctx, Upload upload, Long declaredLength) {
    HttpServerRequest request = ctx.request();
    vertx.fileSystem().createTempFile("idemgate-settlement-", ".csv")
        .compose(path -> vertx.fileSystem().open(path, new OpenOptions().setWrite(true))
            .compose(file -> SettlementUpload.store(request, file, settings.maxUploadBytes(), declaredLength, vertx,
                uploadSilenceMillis))
            .compose(v -> workers.executeBlocking(() -> start(Path.of(path), upload), false))
            .onFailure(failure -> vertx.fileSystem().delete(path)))
        .onSuccess(started -> {
          ctx.response().setStatusCode(202)
              .putHeader("Location", "/admin/reconciliations/" + started.runId())
              .putHeader("Content-Type", "application/json")
              .end(new JsonObject().put("id", started.runId()).put("status", "RUNNING").encode());
          runs.executeBlocking(() -> finish(started), false).onComplete(done -> runsInFlight--);
        })
        .onFailure(failure -> {
          runsInFlight--;
          if (failure instanceof SettlementFileException e) {
            Problems.send(ctx, new ApiProblem(ErrorCode.INVALID_REQUEST, e.getMessage()));
          } else if (failure instanceof ApiProblem problem && problem.code() == ErrorCode.REQUEST_TIMEOUT) {
            Problems.sendLeavingBodyUnread(ctx, problem); // the rest of the body may never come
          } else if (failure instanceof ApiProblem problem) {
            Problems.send(ctx, problem);
          } else {
            ctx.fail(failure);
          }
        });
  }

  /** Worker: checks the file's header and records (a 400 for a file that cannot be run), then records the run. */
  private Started start(Path file, Upload upload) throws Exception {
    ReconciliationRequest r = upload.request();
    Map<String, String> columns = upload.settings().columnMap(r.provider());
    SettlementReader.checkRecords(Files.newInputStream(file), r.settlementName(), columns, credentials);
    SettlementReader reader = SettlementReader.open(Files.newInputStream(file), r.settlementName(), columns, credentials);
    try {
      Files.deleteIfExists(file); // the open stream keeps the data readable; nothing is left behind on a crash
      Connection c = Jdbc.connect(pgUrl);
      try {
        return new Started(new Reconciler(upload.settings(), chargeInFlight).createRun(c, r), c, reader, upload);
      } catch (Exception e) {
        c.close();
        throw e;
      }
    } catch (Exception e) {
      reader.close();
      throw e;
    }
  }

  /** Worker: the run itself; its outcome is stored with the run. */
  private Void finish(Started started) {
    try (Connection c = started.connection()) {
      Reconciler.Outcome outcome = new Reconciler(started.upload().settings(), chargeInFlight)
          .run(c, started.runId(), started.reader(), started.upload().request());
      String oldRuns = outcome.oldRuns() == null ? null : outcome.oldRuns().describe();
      if (oldRuns != null && outcome.oldRuns().failure() != null) {
        log.warn("after reconciliation {}: {}", started.runId(), oldRuns);
      } else if (oldRuns != null) {
        log.info("after reconciliation {}: {}", started.runId(), oldRuns);
      }
    } catch (Exception e) {
      // The first line only: a PostgreSQL error's Detail and Where lines can quote the values of a row.
      String reason = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
      log.warn("reconciliation {} failed: {}", started.runId(), reason.length() > 300 ? reason.substring(0, 300) + "…" : reason);
    }
    return null;
  }

  /** The query parameters of an upload; any other, or one given twice, is refused before the body is read. */
  private static final Set<String> UPLOAD_PARAMETERS =
      Set.of("provider", "from", "to", "merchant_prefix", "name", "settlement_lag");

  private Upload uploadOf(RoutingContext ctx) {
    QueryParameters.check(ctx, UPLOAD_PARAMETERS);
    String name = param(ctx, "name").orElse("upload.csv");
    Optional<Instant> from = param(ctx, "from").map(t -> ReconcileCommand.instant("from", t, false));
    Optional<Instant> to = param(ctx, "to").map(t -> ReconcileCommand.instant("to", t, true));
    if (from.isPresent() && to.isPresent() && !from.get().isBefore(to.get())) {
      throw new ConfigException("from must be before to"); // as the CLI's --from and --to
    }
    ReconciliationSettings runSettings = param(ctx, "settlement_lag")
        .map(lag -> settings.withSettlementLag(ReconciliationSettings.settlementLag("settlement_lag", lag)))
        .orElse(settings);
    return new Upload(new ReconciliationRequest(name, ReconciliationRequest.Source.API, param(ctx, "provider"), from, to,
        param(ctx, "merchant_prefix"), Instant.now()), runSettings);
  }

  /**
   * A query parameter, empty when not given. Given empty ({@code ?provider=}) it is refused with 400,
   * as the CLI refuses {@code --provider ''}: an empty provider read as "not given" reconciled the
   * file against every provider's payments, a query template's missing value taken for a choice.
   */
  private Optional<String> param(RoutingContext ctx, String name) {
    String value = text(name, ctx.queryParams().get(name), false);
    if (value != null && value.isBlank()) {
      throw new ApiProblem(ErrorCode.INVALID_REQUEST, name + " must not be empty: leave it out"
          + (name.equals("provider") ? " for every provider's payments" : ""));
    }
    if (value != null) {
      refuseSecrets(name, value, "nothing was stored");
    }
    return Optional.ofNullable(value);
  }

  /**
   * Refuses, with 400 naming the field and never the value, a text an operator sends that holds a card
   * number or one of the gateway's credentials ({@link CredentialScanner}): an upload's fields and a
   * resolution's note are stored with the run, shown in every report and in the list. In a
   * {@code name}, {@code provider} or {@code merchant_prefix} a card counts only with a card network's
   * first digits ({@link CardNumberScanner#containsIssuedCardNumber}): file names often carry a time,
   * and merchant ids are often 15 digits, one in ten of either passing the Luhn check. No token is passed as presented: these routes are reached with
   * the admin token only, which the scanner knows in full.
   */
  private void refuseSecrets(String field, String value, String outcome) {
    boolean card = field.equals("note") ? CardNumberScanner.containsCardNumber(value)
        : CardNumberScanner.containsIssuedCardNumber(value);
    if (card) {
      throw new ApiProblem(ErrorCode.CARD_DATA_REJECTED, field + " holds what looks like a card number; it would "
          + "be stored with the run and shown in its reports, and must hold none: " + outcome);
    }
    CredentialScanner.Credential credential = credentials.find(value, null);
    if (credential != null) {
      throw new ApiProblem(ErrorCode.CREDENTIAL_REJECTED, field + " holds " + credential.named() + " of this gateway; "
          + "it would be stored with the run and shown in its reports, and must hold none (treat that one as exposed): "
          + outcome);
    }
  }

  /** A text a client sends: control characters (a NUL PostgreSQL refuses, say) are refused with 400. */
  private static String text(String name, String value, boolean lineBreaksAllowed) {
    boolean refused = value != null && value.chars().anyMatch(c -> Character.isISOControl(c)
        && !(lineBreaksAllowed && (c == '\n' || c == '\r' || c == '\t')));
    if (refused) {
      throw new ApiProblem(ErrorCode.INVALID_REQUEST, name + " must not hold control characters");
    }
    return value;
  }

  private void list(RoutingContext ctx) {
    // Uploads and runs this instance has under way: a run is recorded COMPLETED a moment before it
    // gives its place back, so a client that polls a run's status and uploads next reads this.
    int underWay = runsInFlight;
    workers.executeBlocking(() -> {
      try (Connection c = Jdbc.connect(pgUrl)) {
        List<ReconciliationRun> recent = ReconciliationStore.recent(c, RECENT_RUNS);
        // As in the report's summary: total and by_category are what the run found, resolved and open
        // are read now, so that a list and a report asked at the same time agree.
        Map<String, JsonObject> figures = ReconciliationStore.listedFigures(c, recent);
        JsonArray runs = new JsonArray();
        for (ReconciliationRun run : recent) {
          runs.add(run.toJson().put("summary", run.summary() == null ? null : new JsonObject()
              .put("total", run.summary().getLong("total")).put("by_category", run.summary().getJsonObject("by_category"))
              // What the run warned about and the lines it could not read, so that a run with
              // problems is seen from the list.
              .put("warnings", run.summary().getJsonArray("warnings", new JsonArray()))
              .put("rows", run.summary().getJsonObject("rows"))
              .mergeIn(figures.get(run.id()))));
        }
        return new JsonObject().put("runs", runs)
            .put("under_way", new JsonObject().put("here", underWay).put("at_most", MAX_RUNS_AT_ONCE));
      }
    }, false).onSuccess(body -> ctx.response().putHeader("Content-Type", "application/json").end(body.encode()))
        .onFailure(ctx::fail);
  }

  private void report(RoutingContext ctx) {
    String id = ctx.pathParam("id");
    if (!RUN_ID.matcher(id).matches()) {
      Problems.send(ctx, new ApiProblem(ErrorCode.NOT_FOUND, "no such reconciliation run"));
      return;
    }
    String requested = ctx.queryParams().get("format");
    ReportFormat format = requested == null ? ReportFormat.JSON : ReportFormat.parse(requested);
    if (format == null) {
      Problems.send(ctx, new ApiProblem(ErrorCode.INVALID_REQUEST, "format must be json, csv or html"));
      return;
    }
    if (reportsInFlight >= MAX_REPORTS_AT_ONCE) {
      Problems.send(ctx, new ApiProblem(ErrorCode.RATE_LIMITED,
          MAX_REPORTS_AT_ONCE + " reports are being sent already; try again shortly", null, 5));
      return;
    }
    reportsInFlight++;
    workers.executeBlocking(() -> {
      try (Connection c = Jdbc.connect(pgUrl)) {
        Optional<ReconciliationRun> run = ReconciliationStore.run(c, id);
        if (run.isEmpty()) {
          return null;
        }
        if (!run.get().status().equals("COMPLETED")) {
          return Report.inMemory(new JsonObject().put("run", run.get().toJson()).encode());
        }
        return Report.toFile(format, c, run.get());
      }
    }, false).compose(report -> {
      if (report == null) {
        Problems.send(ctx, new ApiProblem(ErrorCode.NOT_FOUND, "no reconciliation run " + id));
        return Future.succeededFuture();
      } else if (report.file() == null) {
        ctx.response().putHeader("Content-Type", ReportFormat.JSON.contentType()).end(report.text());
        return Future.succeededFuture();
      }
      return sendAndForget(ctx, report.file(), report.bytes(), format);
    }).onComplete(done -> reportsInFlight--).onFailure(failure -> {
      if (ctx.response().headWritten()) {
        // Only a failure to read the file, or a client gone: the response cannot be ended as if whole.
        log.info("reconciliation report {} cut short: {}", id, failure.toString());
        ctx.response().reset();
      } else {
        ctx.fail(failure);
      }
    });
  }

  /**
   * A report to answer with: a short text, or a file that holds it. A completed run's report goes to
   * a temporary file, from the database cursor through an 8 KB buffer, and is sent from there: a
   * report of any size never sits in the heap the payments share, and the worker thread and the
   * database transaction are free again as soon as the file is written, however slowly the client
   * reads.
   */
  private record Report(String text, Path file, long bytes) {
    static Report inMemory(String text) {
      return new Report(text, null, 0);
    }

    static Report toFile(ReportFormat format, Connection c, ReconciliationRun run) throws Exception {
      Path file = Files.createTempFile("idemgate-report-", "." + format.name().toLowerCase(Locale.ROOT));
      boolean written = false;
      try {
        try (Writer out = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
          ReportWriter.write(format, c, run, out);
        }
        written = true;
        return new Report(null, file, Files.size(file));
      } finally {
        if (!written) {
          deleteQuietly(file);
        }
      }
    }
  }

  /**
   * Sends the report file and removes it: it is opened, then deleted from its directory at once (the
   * open file stays readable), so once sending starts nothing is left behind when the client goes
   * away or the gateway stops half way. (A gateway that stops while a worker writes one leaves it in
   * java.io.tmpdir, an emptyDir that goes with the pod in Kubernetes.) A client that stops reading
   * is let go by the management server's idle timeout.
   */
  private Future<Void> sendAndForget(RoutingContext ctx, Path file, long bytes, ReportFormat format) {
    String path = file.toString();
    return vertx.fileSystem().open(path, new OpenOptions().setRead(true))
        .eventually(() -> vertx.fileSystem().delete(path)
            .onFailure(e -> log.warn("could not delete the temporary report file {}: {}", path, e.toString())))
        .compose(opened -> {
          ctx.response().putHeader("Content-Type", format.contentType())
              .putHeader("Content-Length", String.valueOf(bytes));
          // Not ended on a failure: a response shorter than its Content-Length is reset instead.
          return opened.pipe().endOnFailure(false).to(ctx.response()).eventually(opened::close);
        });
  }

  private static void deleteQuietly(Path file) {
    try {
      Files.deleteIfExists(file);
    } catch (IOException | RuntimeException e) {
      log.warn("could not delete the temporary report file {}: {}", file, e.toString());
    }
  }

  /**
   * Deletes a finished run (or one a process left RUNNING when it ended) with its discrepancies and
   * the settlements it recorded: a file reconciled by mistake, or runs older than the history needs.
   */
  private void delete(RoutingContext ctx) {
    String id = ctx.pathParam("id");
    if (!RUN_ID.matcher(id).matches()) {
      Problems.send(ctx, new ApiProblem(ErrorCode.NOT_FOUND, "no such reconciliation run"));
      return;
    }
    workers.executeBlocking(() -> {
      try (Connection c = Jdbc.connect(pgUrl)) {
        return ReconciliationStore.delete(c, id);
      }
    }, false).onSuccess(deletion -> {
      switch (deletion) {
        case DELETED -> {
          log.info("reconciliation run {} deleted, with its discrepancies and recorded settlements", id);
          ctx.response().setStatusCode(204).end();
        }
        case UNDER_WAY -> Problems.send(ctx, new ApiProblem(ErrorCode.CONFLICT,
            "run " + id + " is under way; delete it once it has finished (nothing was deleted)"));
        case HISTORY_BUSY -> Problems.send(ctx, new ApiProblem(ErrorCode.CONFLICT, "another run held the settlement "
            + "history for " + ReconciliationStore.HISTORY_WAIT_ON_DELETE_SECONDS + " s; try again once it has finished "
            + "(nothing was deleted)"));
        case ROW_HELD -> Problems.send(ctx, new ApiProblem(ErrorCode.CONFLICT, "another transaction held a lock the "
            + "deletion of run " + id + " needed (a row of one of its discrepancies being resolved, say) for "
            + ReconciliationStore.HISTORY_WAIT_ON_DELETE_SECONDS + " s; try again once it has finished (nothing was deleted)"));
        case NOT_FOUND -> Problems.send(ctx, new ApiProblem(ErrorCode.NOT_FOUND, "no such reconciliation run"));
      }
    }).onFailure(ctx::fail);
  }

  private void resolve(RoutingContext ctx) {
    if (ctx.response().ended()) {
      return; // answered 408 ("nothing marked") while the last bytes came in: the answer stands
    }
    String id = ctx.pathParam("id");
    long discrepancy;
    try {
      discrepancy = Long.parseLong(ctx.pathParam("discrepancy"));
    } catch (NumberFormatException e) {
      Problems.send(ctx, new ApiProblem(ErrorCode.NOT_FOUND, "no such discrepancy"));
      return;
    }
    if (!RUN_ID.matcher(id).matches()) {
      Problems.send(ctx, new ApiProblem(ErrorCode.NOT_FOUND, "no such reconciliation run"));
      return;
    }
    String note;
    try {
      note = note(ctx.body().buffer());
      refuseSecrets("note", note, "nothing was marked");
    } catch (ApiProblem problem) {
      Problems.send(ctx, problem);
      return;
    }
    workers.executeBlocking(() -> {
      try (Connection c = Jdbc.connect(pgUrl)) {
        return ReconciliationStore.resolve(c, id, discrepancy, note);
      }
    }, false).onSuccess(resolution -> {
      if (resolution instanceof ReconciliationStore.Resolution.Resolved now) {
        ctx.response().putHeader("Content-Type", "application/json").end(new JsonObject().put("id", discrepancy)
            .put("status", "resolved").put("resolved_at", now.at().toString()).put("note", note).encode());
      } else if (resolution instanceof ReconciliationStore.Resolution.AlreadyResolved earlier) {
        String at = earlier.at() == null ? null : earlier.at().toString();
        Problems.send(ctx, new ApiProblem(ErrorCode.CONFLICT, "discrepancy " + discrepancy + " of run " + id
            + " was resolved already, at " + at + ", "
            + (earlier.note() == null ? "with no note" : "with the note " + quoted(earlier.note()))
            + "; a resolution is not overwritten: nothing was changed")
            .with("resolved_at", at).with("resolution_note", earlier.note()));
      } else {
        Problems.send(ctx, new ApiProblem(ErrorCode.NOT_FOUND, "run " + id + " has no discrepancy " + discrepancy));
      }
    }).onFailure(ctx::fail);
  }

  /** The shape of a resolution, which each refusal of one gives after naming its fault. */
  private static final String RESOLUTION_SHAPE = "send {\"note\": \"what was done about it (a refund, a ticket)\"}";
  /** The characters of an earlier note a 409's detail quotes; its {@code resolution_note} has it whole. */
  private static final int NOTE_QUOTED = 200;

  /**
   * The note of a resolution: the body must be {@code {"note": "…"}}, the note text that says
   * something. It is the audit record of what was done about the discrepancy, so a body without one,
   * or with a member that would not be recorded ({@code "ticket": 42}), is refused, not resolved
   * with no note or part of one; each refusal names its fault.
   */
  static String note(Buffer body) {
    JsonObject json = PaymentRequestParser.strictObject(body);
    if (json == null) {
      throw badResolution(PaymentRequestParser.whyNotOneObject(body));
    }
    List<String> unknown = json.fieldNames().stream().filter(field -> !field.equals("note")).sorted()
        .map(field -> PaymentRequestParser.memberName(field) + " is no member of a resolution").toList();
    if (!unknown.isEmpty()) {
      throw badResolution(String.join("; ", unknown));
    }
    Object note = json.getValue("note");
    if (note == null) {
      throw badResolution("note is missing");
    }
    if (!(note instanceof String text)) {
      throw badResolution("note must be text");
    }
    if (text.isBlank()) {
      throw badResolution("note is empty");
    }
    if (PaymentRequestParser.hasLoneSurrogate(text)) {
      // Stored, half a surrogate pair would become '?': the note would not be the one sent.
      throw badResolution("note holds an unpaired surrogate escape (\\ud800-\\udfff alone)");
    }
    return text("note", text, true);
  }

  private static ApiProblem badResolution(String fault) {
    return new ApiProblem(ErrorCode.INVALID_REQUEST, (fault == null ? "not a resolution" : fault) + ": " + RESOLUTION_SHAPE);
  }

  /** A note as a detail quotes it: in quotes, cut at {@value #NOTE_QUOTED} characters. */
  private static String quoted(String note) {
    return note.length() <= NOTE_QUOTED ? "\"" + note + "\""
        : "\"" + note.substring(0, Character.isHighSurrogate(note.charAt(NOTE_QUOTED - 1)) ? NOTE_QUOTED - 1 : NOTE_QUOTED)
            + "…\" (whole in resolution_note)";
  }
}
