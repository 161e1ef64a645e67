const root = element.querySelector('.fer-live');
const config = JSON.parse(root.dataset.config || 'null');
if (config) import(new URL(config.moduleUrl, document.baseURI).href)
  .then((live) => live.start(root, config))
  .catch((e) => {
    root.querySelector('.fer-status').textContent = `The live view could not load (${e}); frames go to the server.`;
    document.querySelector('#where input[value="the server"]')?.click();
  });
