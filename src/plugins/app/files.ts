// Files as a shared dependency (fastify.files): local-disk storage under UPLOAD_PATH, signed links
// keyed from SECRET_KEY, the files service, and the sweeps that keep records and bytes consistent
// (at start-up, then hourly). Messages resolve their attachments through this service.
import fp from 'fastify-plugin';
import { FileLinks } from '../../files/links.js';
import { LocalDiskStorage } from '../../files/storage.js';
import { deriveKey } from '../../lib/crypto.js';
import { FilesRepository } from '../../repositories/files.js';
import { FilesService } from '../../services/files.js';

const SWEEP_INTERVAL_MS = 60 * 60 * 1000;

declare module 'fastify' {
  interface FastifyInstance {
    files: FilesService;
  }
}

export default fp(
  async function filesPlugin(fastify) {
    const { config } = fastify;
    const storage = new LocalDiskStorage(config.files.upload_path);
    const files = new FilesService({
      files: new FilesRepository(fastify.db),
      storage,
      channels: fastify.channels,
      messages: fastify.messages,
      audit: fastify.audit,
      links: new FileLinks(deriveKey(config.auth.secret_key!, 'file-link'), config.files.link_ttl_s),
      uploadLimiter: fastify.limits.uploads,
      config,
      log: fastify.log,
    });
    fastify.messages.useFiles(files);
    fastify.decorate('files', files);

    // Leftovers of a crash are found in the background: listing every stored file must not hold up
    // readiness.
    let checking: Promise<void> | undefined;
    void fastify.database.whenReady().then(() => {
      checking = files.checkConsistency(new Date()).then(
        (report) => {
          const repaired =
            report.temporary_removed +
            report.records_without_bytes.length +
            report.bytes_without_records.length;
          if (repaired) fastify.log.warn({ files: report }, 'file store repaired after an unclean stop');
        },
        (error: unknown) => fastify.log.warn({ err: error }, 'file store consistency check failed'),
      );
    });
    const sweep = setInterval(() => {
      if (!fastify.database.isReady) return;
      files.sweepUnattached(new Date()).then(
        (removed) => removed && fastify.log.info({ removed }, 'unattached uploads removed'),
        (error: unknown) => fastify.log.warn({ err: error }, 'unattached upload sweep failed'),
      );
    }, SWEEP_INTERVAL_MS);
    sweep.unref();
    fastify.addHook('onClose', async () => {
      clearInterval(sweep);
      await checking;
    });
    fastify.log.info({ storage: storage.kind, upload_path: config.files.upload_path }, 'file storage ready');
  },
  { name: 'files', dependencies: ['config', 'database', 'services'] },
);
