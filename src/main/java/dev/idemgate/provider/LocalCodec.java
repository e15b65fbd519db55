package dev.idemgate.provider;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.MessageCodec;

/**
 * Passes immutable records over the local event bus by reference: no copy, no serialisation.
 * Everything sent with it is a Java record or an immutable value, so sharing it between event
 * loops is safe. It refuses the wire, which a local-only bus never uses.
 */
public final class LocalCodec implements MessageCodec<Object, Object> {
  public static final String NAME = "idemgate-local";

  @Override
  public void encodeToWire(Buffer buffer, Object o) {
    throw new UnsupportedOperationException("idemgate messages are local only");
  }

  @Override
  public Object decodeFromWire(int pos, Buffer buffer) {
    throw new UnsupportedOperationException("idemgate messages are local only");
  }

  @Override
  public Object transform(Object o) {
    return o;
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public byte systemCodecID() {
    return -1;
  }
}
