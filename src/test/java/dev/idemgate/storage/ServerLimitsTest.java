package dev.idemgate.storage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.idemgate.storage.ServerLimits.Settings;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class ServerLimitsTest {
  /** 100 connections, 3 kept for superusers, no other limit, 10 in use by others, autovacuum on. */
  private static Settings server(boolean superuser, int roleLimit, int databaseLimit, int others) {
    return new Settings(100, 3, superuser, roleLimit, databaseLimit, new ServerLimits.Others(others, 0, 0), true, true);
  }

  @Test
  @DisplayName("an instance that fits in the connections left gets no warning")
  void fits() {
    assertThat(ServerLimits.warnings(server(false, -1, -1, 10), 24)).isEmpty();
    assertThat(ServerLimits.warnings(server(false, -1, -1, 10), 87)).isEmpty();
  }

  @Test
  @DisplayName("an instance needing more than the server allows is warned of, naming the settings to change")
  void moreThanTheServerAllows() {
    assertThat(ServerLimits.warnings(server(false, -1, -1, 0), 98)).singleElement().asString()
        .contains("allows this gateway 97 connections").contains("up to 98").contains("503 store_unavailable")
        .contains("pg_pool_size").contains("max_connections");
    assertThat(ServerLimits.warnings(server(true, -1, -1, 0), 98)).as("a superuser may use the reserved slots").isEmpty();
  }

  @Test
  @DisplayName("the role's and the database's connection limits count, for roles that are no superuser")
  void roleAndDatabaseLimits() {
    assertThat(ServerLimits.warnings(server(false, 20, -1, 0), 24)).singleElement().asString().contains("allows this gateway 20 ");
    assertThat(ServerLimits.warnings(server(false, -1, 30, 0), 40)).singleElement().asString().contains("allows this gateway 30 ");
    assertThat(ServerLimits.warnings(server(true, 20, 30, 0), 40)).isEmpty();
  }

  @Test
  @DisplayName("connections other clients hold now are warned of when the rest is too few for this instance")
  void othersLeaveTooFew() {
    assertThat(ServerLimits.warnings(server(false, -1, -1, 80), 24)).singleElement().asString()
        .contains("other clients hold now leave 17").contains("up to 24");
  }

  @Test
  @DisplayName("the role's and the database's limits are shared only with that role's and that database's sessions")
  void othersAgainstEachLimit() {
    // Role limit 50; 300 sessions of other applications on a 500-connection server, none of this role.
    Settings busyServer = new Settings(500, 3, false, 50, -1, new ServerLimits.Others(300, 0, 0), true, true);
    assertThat(ServerLimits.warnings(busyServer, 24)).isEmpty();
    Settings busyRole = new Settings(500, 3, false, 50, -1, new ServerLimits.Others(300, 40, 0), true, true);
    assertThat(ServerLimits.warnings(busyRole, 24)).singleElement().asString().contains("leave 10");
    Settings busyDatabase = new Settings(500, 3, false, -1, 60, new ServerLimits.Others(100, 0, 50), true, true);
    assertThat(ServerLimits.warnings(busyDatabase, 24)).singleElement().asString().contains("leave 10");
  }

  @Test
  @DisplayName("autovacuum off, on the server or on the keys table, is warned of")
  void autovacuumOff() {
    assertThat(ServerLimits.warnings(new Settings(100, 3, false, -1, -1, new ServerLimits.Others(0, 0, 0), false, true), 24)).singleElement().asString()
        .contains("autovacuum off").contains("never reclaimed");
    assertThat(ServerLimits.warnings(new Settings(100, 3, false, -1, -1, new ServerLimits.Others(0, 0, 0), true, false), 24)).singleElement().asString()
        .contains("idemgate.idempotency_keys").contains("RESET (autovacuum_enabled)");
  }
}
