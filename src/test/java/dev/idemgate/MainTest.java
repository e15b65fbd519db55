package dev.idemgate;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class MainTest {
  @Test
  @DisplayName("a drain that finishes exits 0")
  void cleanDrainExitsZero() {
    boolean[] ran = {false};
    assertThat(Main.drain(() -> ran[0] = true)).isZero();
    assertThat(ran[0]).isTrue();
  }

  @Test
  @DisplayName("a drain that throws, even an Error, still gives an exit status instead of killing the drain thread")
  void failedDrainStillExits() {
    assertThat(Main.drain(() -> {
      throw new NoClassDefFoundError("ch/qos/logback/core/LifeCycleManager");
    })).isEqualTo(Main.EXIT_DRAIN_FAILED);
    assertThat(Main.drain(() -> {
      throw new IllegalStateException("vert.x did not close");
    })).isEqualTo(Main.EXIT_DRAIN_FAILED);
  }
}
