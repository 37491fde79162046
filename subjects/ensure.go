package subjects

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Several adapters start at once in a cluster, each ensuring the bus: an
// update of a stream whose configuration is already what it asks for
// changes nothing, and a JetStream cluster may leave it unanswered while
// its streams settle. So a stream or bucket already as configured is left
// alone, and one that a concurrent start created first counts as made.

// ensureStream creates the events stream, or updates it unless it is
// already as cfg says.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case err == nil && sameStream(s.CachedInfo().Config, cfg):
		return nil
	case err == nil:
		_, err = js.UpdateStream(ctx, cfg)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return ensureStream(ctx, js, cfg) // made meanwhile: check its configuration
		}
	}
	return err
}

// sameStream says whether a stream's configuration is what want asks for,
// in what the bus sets.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Storage == want.Storage && have.Replicas == want.Replicas &&
		have.MaxAge == want.MaxAge && have.MaxBytes == want.MaxBytes && have.Duplicates == want.Duplicates &&
		have.Discard == want.Discard && have.AllowDirect == want.AllowDirect && samePublish(have.RePublish, want.RePublish)
}

func samePublish(a, b *jetstream.RePublish) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// ensureKV creates a bucket, or updates it unless it is already as cfg
// says.
func ensureKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) error {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err == nil {
		st, err := kv.Status(ctx)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
		}
		if b, ok := st.(*jetstream.KeyValueBucketStatus); ok && sameKV(b, cfg) {
			return nil
		}
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return err
	}
	_, err = js.CreateOrUpdateKeyValue(ctx, cfg)
	return err
}

// sameKV says whether a bucket is what cfg asks for, in what the bus sets.
func sameKV(b *jetstream.KeyValueBucketStatus, cfg jetstream.KeyValueConfig) bool {
	c := b.StreamInfo().Config
	return c.Replicas == max(cfg.Replicas, 1) && c.Storage == cfg.Storage && c.MaxAge == cfg.TTL &&
		b.History() == max(int64(cfg.History), 1) && b.LimitMarkerTTL() == cfg.LimitMarkerTTL
}

// ensureObjects creates the snapshots' object store, or updates it unless
// it is already as cfg says.
func ensureObjects(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) error {
	obs, err := js.ObjectStore(ctx, cfg.Bucket)
	if err == nil {
		st, err := obs.Status(ctx)
		if err != nil {
			return fmt.Errorf("object store %s: %w", cfg.Bucket, err)
		}
		if st.Replicas() == max(cfg.Replicas, 1) && st.Storage() == cfg.Storage {
			return nil
		}
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return err
	}
	_, err = js.CreateOrUpdateObjectStore(ctx, cfg)
	return err
}
