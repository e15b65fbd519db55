package dev.idemgate.http;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.handler.codec.http.HttpHeaders;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpVersion;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class HostFieldTest {
  private static MultiMap headers(String... namesAndValues) {
    MultiMap headers = MultiMap.caseInsensitiveMultiMap();
    for (int i = 0; i < namesAndValues.length; i += 2) {
      headers.add(namesAndValues[i], namesAndValues[i + 1]);
    }
    return headers;
  }

  @Test
  @DisplayName("one Host line is taken; two, alike or not and in any case of the name, are refused, naming how many")
  void hostLines() {
    assertThat(headers()).as("Vert.x's headers, walked as Netty's").isInstanceOf(HttpHeaders.class);
    assertThat(HostField.problem(HttpVersion.HTTP_1_1, headers("Accept", "*/*", "Host", "pay.example"))).isNull();
    assertThat(HostField.problem(HttpVersion.HTTP_1_1, headers("Host", "pay.example", "Accept", "*/*", "host", "pay.example")))
        .contains("2 Host header field lines");
    assertThat(HostField.problem(HttpVersion.HTTP_1_0, headers("HOST", "a.example", "Host", "b.example", "hOsT", "c")))
        .contains("3 Host header field lines");
  }

  @Test
  @DisplayName("no Host is refused over HTTP/1.1 and taken over HTTP/1.0; an invalid one is refused over either")
  void missingOrInvalidHost() {
    assertThat(HostField.problem(HttpVersion.HTTP_1_1, headers("Hostname", "pay.example"))).contains("must carry a Host");
    assertThat(HostField.problem(HttpVersion.HTTP_1_0, headers("Accept", "*/*"))).isNull();
    assertThat(HostField.problem(HttpVersion.HTTP_1_1, headers("Host", "a/b"))).contains("must be a host name");
    assertThat(HostField.problem(HttpVersion.HTTP_1_0, headers("Host", "a b"))).contains("must be a host name");
  }

  @ParameterizedTest(name = "\"{0}\"")
  @ValueSource(strings = {"pay.example.com", "Pay.Example.COM", "127.0.0.1", "127.0.0.1:8080", "10.0.0.1.nip.io", "a_b",
      "xn--bcher-kva.example", "[::1]", "[::1]:443", "[2001:db8::7]:65535", "[v1.fe80::a+en1]", "a.example:", "[::1]:", "", ":80",
      "localhost:0", "a.example:00080"})
  @DisplayName("a host name or address, an optional port up to 65535 (or an empty one) and an empty Host are valid")
  void valid(String value) {
    assertThat(HostField.isValid(value)).isTrue();
  }

  @ParameterizedTest(name = "\"{0}\"")
  @ValueSource(strings = {"a b", "a/b", "a.example/pay", "user@a.example", "a.example:65536", "a.example:99999999999",
      "a.example:8o", "a:80:80", "a.example:-1", "[::1", "[]", "[::1]x", "[::1]]", "[a b]", "::1", "a%20b",
      "%41", "a\tb", "a.example?x", "a.example#x", "a\"b", "é.example", "a\\b"})
  @DisplayName("spaces, slashes, userinfo, a port that is no number of 0-65535, an unclosed or empty bracket, a bare IPv6 "
      + "address and percent-encoding are not")
  void invalid(String value) {
    assertThat(HostField.isValid(value)).isFalse();
  }
}
