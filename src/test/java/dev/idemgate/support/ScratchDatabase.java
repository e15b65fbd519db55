package dev.idemgate.support;

import dev.idemgate.storage.Migrations;
import io.vertx.core.Vertx;
import java.util.UUID;

/**
 * A database of a test's own on the shared PostgreSQL, migrated, and dropped on close (with its
 * connections): for tests whose recovery passes or purges would otherwise see, and act on, other
 * tests' records in the shared database.
 */
public final class ScratchDatabase implements AutoCloseable {
  private final TestDb admin;
  private final String name;
  private final String url;

  private ScratchDatabase(TestDb admin, String name) {
    this.admin = admin;
    this.name = name;
    this.url = TestGateway.pgUrlOf(name);
  }

  /** Creates {@code <prefix>_<12 random hex digits>} and migrates it. */
  public static ScratchDatabase create(Vertx vertx, String prefix) {
    ScratchDatabase db = new ScratchDatabase(new TestDb(vertx),
        prefix + "_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12));
    db.admin.query("CREATE DATABASE " + db.name);
    Migrations.migrate(db.url);
    return db;
  }

  public String name() {
    return name;
  }

  /** Its connection URL, for IDEMGATE_PG_URL. */
  public String url() {
    return url;
  }

  @Override
  public void close() {
    admin.query("DROP DATABASE " + name + " WITH (FORCE)");
    admin.close();
  }
}
