package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

class DeadlinesTest {
  private static final long MS = 1_000_000L;

  @Test
  @DisplayName("a sweep takes exactly the requests past their deadline, oldest first, and leaves the rest waiting")
  void sweepTakesOnlyTheLateOnes() {
    Deadlines<String> deadlines = new Deadlines<>(1_000);
    deadlines.add("a", 0);
    deadlines.add("b", 100 * MS);
    deadlines.add("c", 200 * MS);
    List<String> expired = new ArrayList<>();

    deadlines.sweep(999 * MS, expired::add);
    assertThat(expired).as("nobody is late 1 ms before the first deadline").isEmpty();

    deadlines.sweep(1_100 * MS, expired::add);
    assertThat(expired).as("a deadline reached is a deadline passed").containsExactly("a", "b");
    assertThat(deadlines.size()).isEqualTo(1);

    deadlines.sweep(5_000 * MS, expired::add);
    assertThat(expired).containsExactly("a", "b", "c");
    assertThat(deadlines.size()).isZero();
  }

  @Test
  @DisplayName("removeIf takes out the items it is told to, at the head, the middle and the tail, counts them, "
      + "and the rest are swept in order")
  void removeIfTakesTheGoneOnes() {
    Deadlines<String> deadlines = new Deadlines<>(1_000);
    for (String item : List.of("gone-1", "b", "gone-2", "c", "gone-3")) {
      deadlines.add(item, 0);
    }
    assertThat(deadlines.removeIf(item -> item.startsWith("gone"))).isEqualTo(3);
    assertThat(deadlines.removeIf(item -> item.startsWith("gone"))).isZero();
    deadlines.add("d", 0);
    List<String> expired = new ArrayList<>();
    deadlines.sweep(5_000 * MS, expired::add);
    assertThat(expired).containsExactly("b", "c", "d");
  }

  @Test
  @DisplayName("a request whose body came in, from the head, the middle or the tail, is never swept, and the list "
      + "goes on working around the gap")
  void doneRequestsAreNeverSwept() {
    Deadlines<String> deadlines = new Deadlines<>(1_000);
    var a = deadlines.add("a", 0);
    var b = deadlines.add("b", 1);
    deadlines.add("c", 2);
    var d = deadlines.add("d", 3);
    deadlines.add("e", 4);

    b.done();
    a.done();
    d.done();
    d.done(); // an answered request whose body had come in: a second done changes nothing
    assertThat(deadlines.size()).isEqualTo(2);

    var f = deadlines.add("f", 5);
    List<String> expired = new ArrayList<>();
    deadlines.sweep(10_000 * MS, expired::add);
    assertThat(expired).containsExactly("c", "e", "f");
    f.done(); // already swept: nothing to undo
    assertThat(deadlines.size()).isZero();

    deadlines.add("g", 20_000 * MS);
    deadlines.sweep(21_000 * MS, expired::add);
    assertThat(expired).as("the emptied list takes new requests").endsWith("g");
  }

  @Test
  @DisplayName("the last waiting request done leaves an empty list, whatever the order")
  void emptiedInAnyOrder() {
    Deadlines<Integer> deadlines = new Deadlines<>(30_000);
    List<Deadlines<Integer>.Waiting> all = new ArrayList<>();
    for (int i = 0; i < 1_000; i++) {
      all.add(deadlines.add(i, i));
    }
    for (int i = 0; i < all.size(); i += 2) {
      all.get(i).done();
    }
    for (int i = all.size() - 1; i > 0; i -= 2) {
      all.get(i).done();
    }
    assertThat(deadlines.size()).isZero();
    List<Integer> expired = new ArrayList<>();
    deadlines.sweep(Long.MAX_VALUE, expired::add);
    assertThat(expired).isEmpty();
  }

  @Test
  @DisplayName("deadlines are compared as System.nanoTime differences, so they hold across the counter's overflow")
  void nanoTimeOverflow() {
    Deadlines<String> deadlines = new Deadlines<>(1_000);
    long start = Long.MAX_VALUE - 500 * MS;
    deadlines.add("late", start);
    List<String> expired = new ArrayList<>();
    deadlines.sweep(start + 999 * MS, expired::add); // past Long.MAX_VALUE: a negative number
    assertThat(expired).isEmpty();
    deadlines.sweep(start + 1_000 * MS, expired::add);
    assertThat(expired).containsExactly("late");
  }

  @Test
  @DisplayName("as in the gateway, answering a late request finishes it again and new requests arrive during the "
      + "sweep: neither disturbs the sweep")
  void reentrantSweep() {
    Deadlines<String> deadlines = new Deadlines<>(1_000);
    Map<String, Deadlines<String>.Waiting> waiting = new HashMap<>();
    for (String name : List.of("a", "b", "c")) {
      waiting.put(name, deadlines.add(name, 0));
    }
    List<String> expired = new ArrayList<>();
    deadlines.sweep(1_000 * MS, item -> {
      expired.add(item);
      waiting.get(item).done(); // the 408 ends the response, whose end handler finishes the request
      if (item.equals("b")) {
        deadlines.add("new", 1_000 * MS); // a request whose headers come in meanwhile: not late yet
        waiting.get("c").done(); // and c's body came in just before its turn
      }
    });
    assertThat(expired).containsExactly("a", "b");
    assertThat(deadlines.size()).isEqualTo(1);
    deadlines.sweep(2_000 * MS, expired::add);
    assertThat(expired).containsExactly("a", "b", "new");
  }

  @Test
  @DisplayName("a late request that cannot be answered does not hold back the others")
  void failureDoesNotStopTheSweep() {
    Deadlines<String> deadlines = new Deadlines<>(1_000);
    deadlines.add("broken", 0);
    deadlines.add("fine", 0);
    List<String> answered = new ArrayList<>();
    deadlines.sweep(1_000 * MS, item -> {
      if (item.equals("broken")) {
        throw new IllegalStateException("connection already gone");
      }
      answered.add(item);
    });
    assertThat(answered).containsExactly("fine");
    assertThat(deadlines.size()).isZero();
  }

  @Test
  @DisplayName("the sweep runs every tenth of the timeout, between 10 ms and 1 s")
  void sweepInterval() {
    assertThat(Deadlines.sweepIntervalMillis(30_000)).isEqualTo(1_000);
    assertThat(Deadlines.sweepIntervalMillis(1_000)).isEqualTo(100);
    assertThat(Deadlines.sweepIntervalMillis(100)).isEqualTo(10);
    assertThat(Deadlines.sweepIntervalMillis(3_600_000)).isEqualTo(1_000);
  }
}
