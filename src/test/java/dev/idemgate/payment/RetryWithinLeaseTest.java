package dev.idemgate.payment;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class RetryWithinLeaseTest {
  @Test
  @DisplayName("tries within a 30 s lease come at 1, 3, 7 and 15 s, then once more half a second before it ends, then stop")
  void triesUpToTheLeaseEnd() {
    List<Long> at = new ArrayList<>();
    long now = 0;
    long wait = 1_000;
    for (long delay = PaymentService.nextTry(wait, 30_000); delay >= 0; delay = PaymentService.nextTry(wait, 30_000 - now)) {
      now += delay;
      at.add(now);
      wait *= 2;
    }
    assertThat(at).containsExactly(1_000L, 3_000L, 7_000L, 15_000L, 29_500L);
  }

  @Test
  @DisplayName("no try when less than half a second of the lease is left")
  void noTryAtTheEnd() {
    assertThat(PaymentService.nextTry(1_000, 500)).isEqualTo(-1);
    assertThat(PaymentService.nextTry(1_000, 501)).isEqualTo(1);
  }
}
